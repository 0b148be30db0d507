# step_allocations_test counts heap allocations: the counting operator new goes into this binary.
target_sources(engine_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/support/allocation_counter.cpp)
target_include_directories(engine_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
