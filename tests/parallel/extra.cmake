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

if(NOT DSINFER_MPI)  # the aarch64 cross build (cmake/layers.cmake)
  return()
endif()

# ExpertParallelMoe against LocalMoe, bit for bit, under mpirun (MPI's own mpiexec, found by
# FindMPI) with 2 and 4 ranks, oversubscribed on small machines, and alone (a group of one).
# As root Open MPI refuses to start unless told it may (CI runs as root).
file(GLOB mpi_test_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/mpi/*.cpp)
add_executable(parallel_mpi_tests ${mpi_test_srcs})
target_link_libraries(parallel_mpi_tests PRIVATE dsinfer_parallel GTest::gtest)
target_include_directories(parallel_mpi_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/mpi ${PROJECT_SOURCE_DIR}/tests/support)
# Under AddressSanitizer, leak checking is off for MPI processes: Open MPI's components, loaded
# and unloaded with dlopen, leave allocations LeakSanitizer cannot attribute or suppress by name.
# Memory errors are still caught, and every other test checks leaks.
set(DSINFER_MPI_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    ASAN_OPTIONS=detect_leaks=0)
set(DSINFER_MPIEXEC ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none)
add_test(NAME parallel_ep_1rank COMMAND ${CMAKE_COMMAND} -E env ${DSINFER_MPI_ENV} $<TARGET_FILE:parallel_mpi_tests> --gtest_brief=1)
foreach(np 2 4)
  add_test(NAME parallel_ep_${np}ranks
           COMMAND ${CMAKE_COMMAND} -E env ${DSINFER_MPI_ENV}
                   ${DSINFER_MPIEXEC} -np ${np} $<TARGET_FILE:parallel_mpi_tests> --gtest_brief=1)
endforeach()
set_tests_properties(parallel_ep_1rank parallel_ep_2ranks parallel_ep_4ranks PROPERTIES LABELS "parallel;mpi" TIMEOUT 300)

# The real binary under mpirun: logits bit-identical to one process (-np 2 and 4, BF16/FP8
# dispatch, both modes, tiny-v3 and tiny-v2lite), start-up refusals, serving with SIGTERM drain,
# and a hung or killed rank (ep_cli_test.py says what each part checks).
add_test(NAME parallel_ep_cli
  COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/ep_cli_test.py --dsinfer ${DSINFER_BIN} --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(parallel_ep_cli PROPERTIES LABELS "parallel;mpi" TIMEOUT 600 ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
