# `dsinfer plan` and `dsinfer simulate` through the real binary: JSON figures, tables, the PNG
# chart, and the errors a user sees (tests/plan/cli_test.py).
add_test(NAME plan_cli
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/cli_test.py ${DSINFER_BIN} ${PROJECT_SOURCE_DIR}
                 ${DSINFER_ASSETS})
set_tests_properties(plan_cli PROPERTIES LABELS plan TIMEOUT 120)
