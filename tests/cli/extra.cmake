# Command-line behaviour of the real binary on bad input.
add_test(NAME cli_errors COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_errors.sh ${DSINFER_BIN})
set_tests_properties(cli_errors PROPERTIES LABELS cli TIMEOUT 120)
add_test(NAME cli_generate_consistency
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/generate_consistency.py ${DSINFER_BIN})
set_tests_properties(cli_generate_consistency PROPERTIES LABELS cli TIMEOUT 120)
add_test(NAME cli_serve_accounting
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/serve_accounting_test.py ${DSINFER_BIN})
set_tests_properties(cli_serve_accounting PROPERTIES LABELS cli TIMEOUT 180)
add_test(NAME cli_serve_kv_dtype
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/serve_kv_dtype_test.py ${DSINFER_BIN})
set_tests_properties(cli_serve_kv_dtype PROPERTIES LABELS cli TIMEOUT 120)
