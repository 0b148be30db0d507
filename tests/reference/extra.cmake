# The independent Python reference (tests/reference/): its own self-test, registered with ctest.
add_test(NAME reference_self_test COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/self_test.py)
set_tests_properties(reference_self_test PROPERTIES LABELS reference TIMEOUT 120)
