-- Loaded by busted before the specs: makes sure the module under test is the fresh build.
local core = require "corio.core"
assert(package.searchpath == nil or package.searchpath("corio.core", package.cpath), "corio.core not on LUA_CPATH")
return core
