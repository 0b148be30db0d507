# The model tests drive the forward pass through a real KV pool from the cache layer.
target_link_libraries(model_tests PRIVATE dsinfer_cache)
