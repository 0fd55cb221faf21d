/* The Lua binding of the retort core. This folder is the only C that includes lua.h. */
#ifndef RETORT_BIND_H
#define RETORT_BIND_H

#include <lua.h>

/* Opens the `retort.core` module (tensor userdata "retort.Tensor", constructors, autograd). */
int luaopen_retort_core(lua_State *L);

#endif
