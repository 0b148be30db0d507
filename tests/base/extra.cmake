# The layer rule (docs/architecture.md): every include under src/<layer>/ is of a layer that
# cmake/layers.cmake lets it use.
add_test(NAME layer_includes_declared COMMAND ${DSINFER_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/check_layers.py ${PROJECT_SOURCE_DIR})
set_tests_properties(layer_includes_declared PROPERTIES LABELS "base" TIMEOUT 60)
