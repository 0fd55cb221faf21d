# RETORT_FUZZ=ON: libFuzzer targets for every file reader (tests/fuzz/, see tests/fuzz/README.md).
#
#   CC=clang cmake -S . -B build-fuzz -DRETORT_FUZZ=ON -DRETORT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
#         "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g"      (-O1 keeps assert() and is the usual fuzzing level)
#   cmake --build build-fuzz --target retort_fuzz retort   (tests/fuzz/run_bounded.sh does both)
#
# Everything that links the core (the core itself, the binding, the host, the tests) is compiled
# with -fsanitize=fuzzer-no-link,address,undefined: libFuzzer sees the coverage of retort's own
# code (the system's libhdf5, libpng, libjpeg and zlib are not instrumented, but ASan still checks
# what retort hands them and every crash inside them), and ASan/UBSan turn any memory error or
# undefined behaviour into a crash. Only the fuzz_* executables link libFuzzer's main
# (-fsanitize=fuzzer). UBSan does not recover: a report is a crash, as libFuzzer needs it.
# The flags go on the core's targets as PUBLIC options (rather than add_compile_options), so this
# file can be included at the end of CMakeLists.txt, after the targets exist.
option(RETORT_FUZZ "Build the libFuzzer targets of tests/fuzz (needs clang as CMAKE_C_COMPILER)" OFF)
if(RETORT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RETORT_FUZZ=ON needs clang (libFuzzer): configure a fresh build folder with "
            "CC=clang or -DCMAKE_C_COMPILER=clang (found ${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER})")
  endif()
  set(_retort_fuzz_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_compile_options(retort_core PUBLIC
    "$<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link;${_retort_fuzz_san};-g;-Wno-pass-failed>")
  target_link_options(retort_core PUBLIC -fsanitize=address,undefined)
  # the Lua module retort.core links the core privately: it gets the flags itself
  target_compile_options(retort_lua_module PRIVATE
    "$<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link;${_retort_fuzz_san}>")
  target_link_options(retort_lua_module PRIVATE -fsanitize=address,undefined)
  # clang links the sanitizer runtimes into executables only: in a shared library their symbols stay
  # undefined until an executable provides them, which libretort.so's --no-undefined refuses
  if(TARGET retort_shared)
    target_link_options(retort_shared PRIVATE "LINKER:-z,undefs")
  endif()

  add_custom_target(retort_fuzz)
  file(GLOB RETORT_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(src ${RETORT_FUZZ_TARGETS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    # fuzz_common.h; the Lua targets embed the binding (retort_bind) and read the source tree's lua/
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz ${CMAKE_SOURCE_DIR}/core/src)
    target_link_libraries(${name} PRIVATE retort_bind)
    target_compile_definitions(${name} PRIVATE RETORT_FUZZ_LUA_DIR="${CMAKE_SOURCE_DIR}/lua")
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    add_dependencies(retort_fuzz ${name})
  endforeach()
  message(STATUS "retort: libFuzzer targets ON (tests/fuzz; build with --target retort_fuzz)")
endif()
