# The model tests drive the forward pass through a real KV pool from the cache layer.
target_link_libraries(model_tests PRIVATE dsinfer_cache)
# forward_allocations_test counts heap allocations: the counting operator new goes into this binary.
target_sources(model_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/support/allocation_counter.cpp)
target_include_directories(model_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
