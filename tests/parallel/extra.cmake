# Script-driven checks of `dsinfer eplb` (issue 7):
# parallel_eplb_reference: the deepseek policy identical to an independent PyTorch implementation
#   of DeepSeek's published EPLB algorithm (torch's sort/max tie-breaking) on random inputs; the
#   refined policy valid and never worse.
# parallel_eplb_cli: the table, the JSON and the message of every invalid input.
add_test(NAME parallel_eplb_reference
  COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/eplb_reference.py --dsinfer ${DSINFER_BIN})
set_tests_properties(parallel_eplb_reference PROPERTIES LABELS parallel TIMEOUT 300)
add_test(NAME parallel_eplb_cli
  COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/eplb_cli_test.py --dsinfer ${DSINFER_BIN})
set_tests_properties(parallel_eplb_cli PROPERTIES LABELS parallel TIMEOUT 120)
