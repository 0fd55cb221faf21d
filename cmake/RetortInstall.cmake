# Installing retort like any library (DESIGN.md §8). Included at the end of the top-level
# CMakeLists.txt. `cmake --install BUILD --prefix P` lays out:
#
#   P/bin/retort                          the host; finds its modules at ../share/lua/5.4 (main.c)
#   P/lib/libretort.so.0.1.0 (+ .so.0, .so) and P/lib/libretort.a     the C core, shared and static
#   P/include/retort/*.h                  the public C API
#   P/share/lua/5.4/retort/               the Lua modules (the whole lua/retort folder)
#   P/share/retort/tools/torch_state.py   the PyTorch side of `retort import-torch` / `export-torch`
#   P/lib/lua/5.4/retort/core.so          the binding, for a plain lua5.4
#   P/lib/pkgconfig/retort.pc             P/lib/cmake/retort/retort{Config,ConfigVersion,Targets}.cmake
#
# Choices:
#  - libretort.so is retort_core (the static library every test, benchmark and the binding link)
#    linked whole into a shared object: nothing is compiled twice and the two can never differ,
#    CUDA objects included. Only rt_* symbols are exported (cmake/retort.map).
#  - The host and core.so keep the core linked in, as in the build tree: each is self-contained, so
#    a moved tree, or LuaRocks (which spreads a rock's files over its own folders), needs no search
#    path for retort's own libraries, and a process never holds two copies of the core.
#  - RPATH: installed files keep the folders of external libraries that are outside the system's
#    (INSTALL_RPATH_USE_LINK_PATH: OpenBLAS's pthread variant, HDF5's serial folder, CUDA's
#    runtime), the same ones the build tree uses; never a build or source folder.
#  - The dependencies written into retort.pc and retortConfig.cmake are read from retort_core's link
#    libraries once the whole CMakeLists.txt has run (a deferred call), so a library linked to the
#    core anywhere is carried by both without editing this file.
#  - The Lua folders are Lua's standard ones under the prefix (Debian's lua5.4 searches
#    /usr/local/share/lua/5.4 and /usr/local/lib/lua/5.4), with the version read from lua5.4.pc;
#    RETORT_INSTALL_LUADIR / RETORT_INSTALL_CMODDIR move them (the rockspec points them at the
#    rock's folders).
#  - In the build tree, bin/../share/lua/5.4/retort is a symbolic link to the source tree's
#    lua/retort, so the host built there finds the sources by the same rule as an installed one.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

string(REGEX MATCH "^[0-9]+\\.[0-9]+" RETORT_LUA_ABI "${LUA_VERSION}")
if(NOT RETORT_LUA_ABI)
  message(FATAL_ERROR "retort: cannot read Lua's version from lua5.4.pc (LUA_VERSION='${LUA_VERSION}')")
endif()
set(RETORT_INSTALL_LUADIR "share/lua/${RETORT_LUA_ABI}" CACHE STRING
  "Where the Lua modules (the folder retort/) are installed, under the prefix (an absolute folder: the host still looks at ../share/lua/${RETORT_LUA_ABI}, as in a LuaRocks tree)")
set(RETORT_INSTALL_CMODDIR "lib/lua/${RETORT_LUA_ABI}" CACHE STRING
  "Where the binding (retort/core.so) is installed; relative paths are under the prefix")
set(RETORT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/retort" CACHE STRING
  "Where retortConfig.cmake and its companions are installed")
option(RETORT_INSTALL_C_LIBRARY "Install libretort.so/.a, the headers, retort.pc and the CMake package" ON)
option(RETORT_BUILD_TESTS "Build the test programs and benchmarks with `all` (OFF: only what is installed)" ON)

# --- the host finds its modules at <folder of the executable>/RETORT_LUA_FROM_BIN/retort ---------
# Relative install folders give the path between them; an absolute Lua folder (LuaRocks: the rock's
# own, which LuaRocks then moves to <tree>/share/lua/5.4) leaves Lua's standard layout.
set(RETORT_LUA_FROM_BIN "../share/lua/${RETORT_LUA_ABI}")
if(NOT IS_ABSOLUTE "${RETORT_INSTALL_LUADIR}" AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  file(RELATIVE_PATH RETORT_LUA_FROM_BIN "/p/${CMAKE_INSTALL_BINDIR}" "/p/${RETORT_INSTALL_LUADIR}")
endif()
target_compile_definitions(retort PRIVATE RETORT_LUA_FROM_BIN="${RETORT_LUA_FROM_BIN}")

# the same place in the build tree, a relative link to the sources (a moved checkout keeps it)
set(_retort_lua_link "${CMAKE_BINARY_DIR}/bin/${RETORT_LUA_FROM_BIN}/retort")
cmake_path(NORMAL_PATH _retort_lua_link)
cmake_path(GET _retort_lua_link PARENT_PATH _retort_lua_link_dir)
cmake_path(IS_PREFIX CMAKE_BINARY_DIR "${_retort_lua_link}" NORMALIZE _retort_lua_link_inside)
if(_retort_lua_link_inside)
  file(MAKE_DIRECTORY "${_retort_lua_link_dir}")
  file(RELATIVE_PATH _retort_lua_link_target "${_retort_lua_link_dir}" "${CMAKE_SOURCE_DIR}/lua/retort")
  file(CREATE_LINK "${_retort_lua_link_target}" "${_retort_lua_link}" SYMBOLIC)
  # and bin/../share/retort/tools -> the source tree's tools/, where the installed helper lands
  file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/share/retort")
  file(RELATIVE_PATH _retort_tools_target "${CMAKE_BINARY_DIR}/share/retort" "${CMAKE_SOURCE_DIR}/tools")
  file(CREATE_LINK "${_retort_tools_target}" "${CMAKE_BINARY_DIR}/share/retort/tools" SYMBOLIC)
else()
  message(WARNING "retort: with CMAKE_INSTALL_BINDIR=${CMAKE_INSTALL_BINDIR} the host built here finds its "
    "Lua modules only through RETORT_LUA_PATH (bin/${RETORT_LUA_FROM_BIN} leaves the build folder)")
endif()

# --- libretort.so: retort_core, whole --------------------------------------------------------------
# A target needs a source of its own to have a link language; this one holds nothing.
set(_retort_shared_unit "${CMAKE_BINARY_DIR}/retort_shared_unit.c")
file(CONFIGURE OUTPUT "${_retort_shared_unit}" CONTENT
  "/* libretort.so is retort_core linked whole (cmake/RetortInstall.cmake); this unit is empty. */\ntypedef int rt_shared_unit_;\n")
add_library(retort_shared SHARED "${_retort_shared_unit}")
target_link_libraries(retort_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,retort_core>")
target_include_directories(retort_shared INTERFACE
  "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/core/include>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
target_link_options(retort_shared PRIVATE "LINKER:--version-script=${CMAKE_CURRENT_LIST_DIR}/retort.map"
  "LINKER:--no-undefined")
set_target_properties(retort_shared PROPERTIES OUTPUT_NAME retort EXPORT_NAME retort
  VERSION "${PROJECT_VERSION}" SOVERSION "${PROJECT_VERSION_MAJOR}"
  LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/lib" LINK_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/retort.map")
# the static core is installed as libretort.a and exported as retort::retort_static
set_target_properties(retort_core PROPERTIES OUTPUT_NAME retort EXPORT_NAME retort_static)
set_target_properties(retort retort_lua_module retort_shared PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)

# --- install rules ---------------------------------------------------------------------------------
install(TARGETS retort RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(TARGETS retort_lua_module LIBRARY DESTINATION "${RETORT_INSTALL_CMODDIR}/retort")
install(DIRECTORY lua/retort DESTINATION "${RETORT_INSTALL_LUADIR}" PATTERN ".*" EXCLUDE PATTERN "*~" EXCLUDE)
# tools/ (the PyTorch side of import-torch / export-torch): share/retort/tools, which the Lua side
# finds at ../share/retort/tools from the executable (lua/retort/interop/torch.lua)
install(PROGRAMS tools/torch_state.py DESTINATION "${CMAKE_INSTALL_DATADIR}/retort/tools")
if(RETORT_INSTALL_C_LIBRARY)
  install(TARGETS retort_shared EXPORT retortTargets LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  install(TARGETS retort_core EXPORT retortStaticTargets ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  install(DIRECTORY core/include/retort DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" FILES_MATCHING PATTERN "*.h")
  install(EXPORT retortTargets NAMESPACE retort:: DESTINATION "${RETORT_INSTALL_CMAKEDIR}")
  install(EXPORT retortStaticTargets NAMESPACE retort:: DESTINATION "${RETORT_INSTALL_CMAKEDIR}")
  write_basic_package_version_file("${CMAKE_BINARY_DIR}/retortConfigVersion.cmake"
    COMPATIBILITY SameMajorVersion)
  install(FILES "${CMAKE_BINARY_DIR}/retortConfig.cmake" "${CMAKE_BINARY_DIR}/retortConfigVersion.cmake"
    DESTINATION "${RETORT_INSTALL_CMAKEDIR}")
  install(FILES "${CMAKE_BINARY_DIR}/retort.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

# --- dependencies of the core, for retort.pc and retortConfig.cmake ---------------------------------

# A library file given by path as a linker flag: -l<name>, with -L<folder> unless the compiler
# searches that folder anyway.
function(_retort_path_flags path out)
  cmake_path(GET path PARENT_PATH dir)
  cmake_path(GET path FILENAME name)
  string(REGEX REPLACE "^lib" "" name "${name}")
  string(REGEX REPLACE "\\.(so|a)(\\.[0-9.]*)?$" "" name "${name}")
  set(flags "")
  if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
    list(APPEND flags "-L${dir}")
  endif()
  list(APPEND flags "-l${name}")
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

# The package whose find module or config makes an imported target NS::name (CUDA::x comes from
# FindCUDAToolkit, OpenMP::OpenMP_<LANG> from FindOpenMP's <LANG> component, others are NS).
function(_retort_find_call target out)
  string(REGEX MATCH "^([^:]+)::(.*)$" _ "${target}")
  set(ns "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(ns STREQUAL "CUDA")
    set(call "find_dependency(CUDAToolkit)")
  elseif(ns STREQUAL "OpenMP" AND name MATCHES "^OpenMP_(.+)$")
    set(call "find_dependency(OpenMP COMPONENTS ${CMAKE_MATCH_1})")
  else()
    set(call "find_dependency(${ns})")
  endif()
  set(${out} "${call}" PARENT_SCOPE)
endfunction()

# Walks one link item (and, for imported targets, what they link) and appends to the variables
# _pc_requires, _pc_libs and _find_static of the caller (a macro, for that reason; _seen stops
# cycles).
macro(_retort_walk_item item)
  set(_it "${item}")
  if(_it MATCHES "^\\$<LINK_ONLY:(.*)>$")
    set(_it "${CMAKE_MATCH_1}")
  endif()
  if(_it IN_LIST _seen OR _it STREQUAL "")
  elseif(_it MATCHES "^\\$<")
    message(WARNING "retort: retort.pc cannot carry the link item ${_it}")
  elseif(TARGET "${_it}")
    list(APPEND _seen "${_it}")
    get_target_property(_imported "${_it}" IMPORTED)
    get_target_property(_type "${_it}" TYPE)
    if(_it MATCHES "^PkgConfig::(.+)$")
      set(_prefix "${CMAKE_MATCH_1}")
      if(NOT DEFINED ${_prefix}_MODULE_NAME)
        message(FATAL_ERROR "retort: no pkg-config module recorded for ${_it}")
      endif()
      list(APPEND _pc_requires "${${_prefix}_MODULE_NAME}")
      list(APPEND _find_static "find_dependency(PkgConfig)" "_retort_pkg_target(${_prefix} ${${_prefix}_MODULE_NAME})")
    elseif(_imported)
      _retort_find_call("${_it}" _call)
      list(APPEND _find_static "${_call}")
      if(NOT _type STREQUAL "INTERFACE_LIBRARY")
        get_target_property(_loc "${_it}" IMPORTED_LOCATION)
        if(NOT _loc)
          get_target_property(_configs "${_it}" IMPORTED_CONFIGURATIONS)
          list(GET _configs 0 _config)
          get_target_property(_loc "${_it}" IMPORTED_LOCATION_${_config})
        endif()
        if(_loc)
          _retort_path_flags("${_loc}" _flags)
          list(APPEND _pc_libs ${_flags})
        endif()
      endif()
      get_target_property(_deps "${_it}" INTERFACE_LINK_LIBRARIES)
      if(_deps)
        list(APPEND _pending ${_deps})
      endif()
    else()
      message(FATAL_ERROR "retort: retort_core links the project's own target ${_it}; it cannot be installed")
    endif()
  elseif(IS_ABSOLUTE "${_it}")
    list(APPEND _seen "${_it}")
    _retort_path_flags("${_it}" _flags)
    list(APPEND _pc_libs ${_flags})
  elseif(_it MATCHES "^-")
    list(APPEND _seen "${_it}")
    list(APPEND _pc_libs "${_it}")
  else()
    list(APPEND _seen "${_it}")
    list(APPEND _pc_libs "-l${_it}")
  endif()
endmacro()

# Runs once the whole top-level CMakeLists.txt has been read: retort_core's link libraries are final.
function(_retort_finish_install)
  # the static core's public include folder, as the exported target must see it
  get_target_property(_inc retort_core INTERFACE_INCLUDE_DIRECTORIES)
  set(_inc_exported "")
  foreach(_dir IN LISTS _inc)
    if(_dir STREQUAL "${CMAKE_SOURCE_DIR}/core/include")
      list(APPEND _inc_exported "$<BUILD_INTERFACE:${_dir}>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
    elseif(_dir MATCHES "^\\$<" OR NOT (_dir MATCHES "^${CMAKE_SOURCE_DIR}/" OR _dir MATCHES "^${CMAKE_BINARY_DIR}/"))
      list(APPEND _inc_exported "${_dir}")
    else()
      list(APPEND _inc_exported "$<BUILD_INTERFACE:${_dir}>")
    endif()
  endforeach()
  set_property(TARGET retort_core PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_inc_exported}")

  # everything the core links, PUBLIC and PRIVATE
  get_target_property(_pending retort_core LINK_LIBRARIES)
  set(_seen "")
  set(_pc_requires "")
  set(_pc_libs "")
  set(_find_static "")
  while(_pending)
    list(POP_FRONT _pending _item)
    _retort_walk_item("${_item}")
  endwhile()
  # the C++ runtime when the core holds C++ or CUDA objects: a C program's linker does not add it,
  # so libretort.a's users get it from retort.pc and from the exported retort::retort_static
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  foreach(_lang IN ITEMS CXX CUDA)
    if(_lang IN_LIST _languages)
      foreach(_lib IN LISTS CMAKE_${_lang}_IMPLICIT_LINK_LIBRARIES)
        if(NOT _lib IN_LIST CMAKE_C_IMPLICIT_LINK_LIBRARIES AND NOT "-l${_lib}" IN_LIST _pc_libs)
          list(APPEND _pc_libs "-l${_lib}")
          set_property(TARGET retort_core APPEND PROPERTY INTERFACE_LINK_LIBRARIES "$<INSTALL_INTERFACE:${_lib}>")
        endif()
      endforeach()
    endif()
  endforeach()
  list(REMOVE_DUPLICATES _pc_requires)
  list(REMOVE_DUPLICATES _pc_libs)
  list(JOIN _pc_requires " " RETORT_PC_REQUIRES)
  list(JOIN _pc_libs " " RETORT_PC_LIBS)

  # retort.pc: paths relative to its own folder
  set(_pcdir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  if(IS_ABSOLUTE "${_pcdir}")
    set(RETORT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  else()
    file(RELATIVE_PATH _up "/p/${_pcdir}" "/p")
    string(REGEX REPLACE "/$" "" _up "${_up}")
    set(RETORT_PC_PREFIX "\${pcfiledir}/${_up}")
  endif()
  foreach(_kind IN ITEMS LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
      set(RETORT_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
    else()
      set(RETORT_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
    endif()
  endforeach()
  configure_file("${CMAKE_SOURCE_DIR}/cmake/retort.pc.in" "${CMAKE_BINARY_DIR}/retort.pc" @ONLY)

  # retortConfig.cmake: one call per package, then one check for the pkg-config modules
  list(REMOVE_DUPLICATES _find_static)
  if("find_dependency(PkgConfig)" IN_LIST _find_static)
    list(APPEND _find_static "if(DEFINED \${CMAKE_FIND_PACKAGE_NAME}_FOUND AND NOT \${CMAKE_FIND_PACKAGE_NAME}_FOUND)"
      "  return()" "endif()")
  endif()
  list(JOIN _find_static "\n  " RETORT_CONFIG_STATIC_DEPS)
  string(PREPEND RETORT_CONFIG_STATIC_DEPS "  ")
  configure_package_config_file("${CMAKE_SOURCE_DIR}/cmake/retortConfig.cmake.in"
    "${CMAKE_BINARY_DIR}/retortConfig.cmake" INSTALL_DESTINATION "${RETORT_INSTALL_CMAKEDIR}")

  # RETORT_BUILD_TESTS=OFF: `all` builds only what is installed
  if(NOT RETORT_BUILD_TESTS)
    get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY BUILDSYSTEM_TARGETS)
    foreach(_target IN LISTS _targets)
      if(NOT _target IN_LIST RETORT_INSTALLED_TARGETS)
        set_property(TARGET ${_target} PROPERTY EXCLUDE_FROM_ALL TRUE)
      endif()
    endforeach()
  endif()
endfunction()

# what `all` must build for `install` (retort_bind: linked into the host)
set(RETORT_INSTALLED_TARGETS retort retort_bind retort_lua_module retort_core retort_shared)
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _retort_finish_install)
