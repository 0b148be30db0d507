# `dsinfer transfer-bench` through the real binary, briefly: two processes, raw UCX and UcxAgent,
# the JSON parses and both paths moved whole messages (tests/transfer/bench_smoke.py).
add_test(NAME transfer_bench_smoke COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bench_smoke.py ${DSINFER_BIN})
set_tests_properties(transfer_bench_smoke PROPERTIES LABELS transfer TIMEOUT 60)
