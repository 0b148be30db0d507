# The layers above base, bottom to top (docs/architecture.md). Each names the layers it may use.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# zlib: gzip/deflate request bodies (serve/content_coding.cpp).
find_package(ZLIB REQUIRED)
# cpp-httplib as Debian builds it (a shared library with the TLS/zlib/brotli defines its ABI
# needs): only the HTTP *client* of `dsinfer bench`; the server is serve/http_server.cpp.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# (declared first: the cache layer below reads it too)
option(DSINFER_MPI "build the layers from parallel up (needs MPI)" ON)
dsinfer_layer(kernels DEPS dsinfer_base)
dsinfer_layer(model DEPS dsinfer_kernels)
dsinfer_layer(tokenizer DEPS dsinfer_base PkgConfig::PCRE2)
dsinfer_layer(cache DEPS dsinfer_kernels)  # the latent row layout (kernels/latent_cache.h)
# liburing (Debian's liburing-dev): the disk tier's batched reads (cache/block_file_reader.h).
# Required by the full build; a build without it (the aarch64 cross build, which has no arm64
# liburing) reads with pread.
pkg_check_modules(URING IMPORTED_TARGET liburing)
if(URING_FOUND)
  target_link_libraries(dsinfer_cache PUBLIC PkgConfig::URING)
  target_compile_definitions(dsinfer_cache PRIVATE DSINFER_HAVE_URING=1)
elseif(DSINFER_MPI)
  message(FATAL_ERROR "liburing not found: install liburing-dev (scripts/setup.sh does)")
endif()
dsinfer_layer(plan DEPS dsinfer_model)
# MPI (Open MPI from Debian): the communicator of expert parallelism (parallel/communicator.h).
# Only the C API is used. The aarch64 cross build turns it off: Debian's arm64 Open MPI cannot
# be installed beside the host's (the packages conflict), and that build only tests the kernel,
# model and tokenizer layers, which do not use it; the layers from parallel up are then absent.
if(NOT DSINFER_MPI)
  set(DSINFER_APP_LIBS "")
  return()
endif()
find_package(MPI REQUIRED COMPONENTS C)
dsinfer_layer(parallel DEPS dsinfer_model MPI::MPI_C)
# mpi.h in C++ would drag in MPI's removed C++ bindings (and their library): the C API only.
target_compile_definitions(dsinfer_parallel PUBLIC OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
dsinfer_layer(engine DEPS dsinfer_model dsinfer_tokenizer dsinfer_cache dsinfer_parallel)
# UCX (Debian's libucx): the KV transfer between prefill and decode instances (transfer/ucx_agent.h,
# docs/serving.md): shared memory or TCP on one machine, RDMA on a cluster, chosen by UCX.
pkg_check_modules(UCX REQUIRED IMPORTED_TARGET ucx)
dsinfer_layer(transfer DEPS dsinfer_base PkgConfig::UCX)
dsinfer_layer(serve DEPS dsinfer_engine dsinfer_transfer ZLIB::ZLIB)
# The prefill/decode router: the API in front of prefill and decode instances (cpp-httplib is its
# client of the instances; its own server is serve/http_server.h).
dsinfer_layer(router DEPS dsinfer_serve PkgConfig::HTTPLIB)
set(DSINFER_APP_LIBS dsinfer_router dsinfer_plan)
