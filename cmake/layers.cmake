# The layers above base, bottom to top. Each entry names the layers it may use.
dsinfer_layer(kernels DEPS dsinfer_base)
dsinfer_layer(model DEPS dsinfer_kernels)
set(DSINFER_APP_LIBS dsinfer_model)
