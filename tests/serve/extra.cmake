# The hostile-client load script (scripts/hostile_clients.py) in its short form: slowloris, slow
# bodies, a disconnect storm, body/header floods, garbage, 200 concurrent streams and the shutdown
# deadlines, against servers it starts itself on a tiny model. docs/serving.md has the full run.
add_test(NAME serve_hostile_clients
         COMMAND ${DSINFER_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/hostile_clients.py --dsinfer ${DSINFER_BIN} --quick)
set_tests_properties(serve_hostile_clients PROPERTIES LABELS "serve;e2e" TIMEOUT 300 RUN_SERIAL TRUE)

# One text prompt, one token sequence: /v1/completions and `dsinfer generate` against Hugging
# Face's tokenizer (npm `tokenizers`) with BOS per add_bos_token.
add_test(NAME serve_prompt_ids_vs_hf
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/prompt_ids_test.py --dsinfer ${DSINFER_BIN}
                 --work ${DSINFER_TESTDATA}/prompt_ids)
set_tests_properties(serve_prompt_ids_vs_hf PROPERTIES LABELS serve TIMEOUT 300)

# Helpers shared with other test binaries (tests/support).
target_include_directories(serve_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)

# The prefix cache's disk tier end to end: two servers sharing a directory, kill -9 and restart,
# corrupt/truncated/foreign block files, a directory that cannot be written (docs/serving.md).
add_test(NAME serve_disk_tier
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/disk_tier_test.py ${DSINFER_BIN} ${DSINFER_TESTDATA}/disk_tier)
set_tests_properties(serve_disk_tier PROPERTIES LABELS "serve;e2e" TIMEOUT 300 RUN_SERIAL TRUE)

# The disk tier's benchmark in its smoke form (scripts/disk_kv_bench.py --quick: tiny-v3, a
# 256-token prompt, a small multi-turn load; the figures in docs/benchmarks.md are the full run's).
add_test(NAME serve_disk_kv_bench_smoke
         COMMAND ${DSINFER_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/disk_kv_bench.py --quick --dsinfer ${DSINFER_BIN}
                 --work ${DSINFER_TESTDATA}/disk_kv_bench)
set_tests_properties(serve_disk_kv_bench_smoke PROPERTIES LABELS "serve;bench" TIMEOUT 300 RUN_SERIAL TRUE)
