# Disaggregated serving end to end (docs/serving.md): `dsinfer router` in front of prefill and
# decode instances on loopback, against `serve --role both`. tokens: 32 concurrent clients, 1+1 and
# 2+2 instances, the same output; faults: retries, corrupt blocks, stalled transfers, a decode
# instance and a router killed mid-stream, restarts; disk: two prefill instances sharing one
# --kv-disk-dir, a prompt prefilled by one a disk hit on the other; speculative: MTP drafts on both
# sides of the split (the demo model), the output of serve without drafts.
foreach(part tokens faults disk speculative)
  add_test(NAME router_pd_${part}
           COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/pd_test.py ${DSINFER_BIN} ${DSINFER_TESTDATA}/pd
                   --part ${part})
  set_tests_properties(router_pd_${part} PROPERTIES LABELS "router;e2e" TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()
# The prefill and the decode instance as expert-parallel groups (mpirun -np 2 each).
add_test(NAME router_pd_group
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/pd_test.py ${DSINFER_BIN} ${DSINFER_TESTDATA}/pd
                 --part group --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(router_pd_group PROPERTIES LABELS "router;e2e;mpi" TIMEOUT 300 RUN_SERIAL TRUE
                     ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")

# The disaggregated-serving benchmark's smoke run (scripts/pd_bench.sh --quick: tiny-v3, a small
# mixed load; the figures in docs/benchmarks.md come from the full run).
add_test(NAME router_pd_bench_smoke COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pd_bench.sh --quick)
set_tests_properties(router_pd_bench_smoke PROPERTIES LABELS "router;bench" TIMEOUT 300 RUN_SERIAL TRUE
                     ENVIRONMENT "DSINFER=${DSINFER_BIN};WORK=${DSINFER_TESTDATA}/pd_bench")
