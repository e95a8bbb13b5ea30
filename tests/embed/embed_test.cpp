// A C++ program that embeds Lua and requires corio shares its thread's loop with the Lua
// side: the module and the host link one libcorio.so, so there is one Loop::current() per
// thread. Built once per interpreter; the module, the Lua modules' directory and the
// interpreter's name come from CMake (CORIO_EMBED_CPATH, CORIO_EMBED_LUA_DIR, CORIO_EMBED_LUA).
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>
#include <lua.hpp>

#include <string>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Loop;

// A Lua state with corio required (as `corio`), closed at the end of the test, before the
// fixture checks that Loop::current() closes.
class Embed : public corio_test::LoopFixture {
 protected:
  void SetUp() override {
    LoopFixture::SetUp();
    L = luaL_newstate();
    luaL_openlibs(L);
    ASSERT_EQ(run("package.cpath = '" CORIO_EMBED_CPATH "'\n"
                  "package.path = '" CORIO_EMBED_LUA_DIR "/?.lua;" CORIO_EMBED_LUA_DIR "/?/init.lua'\n"
                  "corio = require 'corio'"),
              "");
  }
  void TearDown() override {
    if (L) lua_close(L);
    LoopFixture::TearDown();
  }
  // Runs a chunk; returns its error message, or "" if it ran.
  std::string run(const char* chunk) {
    if (luaL_dostring(L, chunk) == 0) return "";
    std::string err = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)";
    lua_pop(L, 1);
    return err;
  }
  bool global_true(const char* name) {
    lua_getglobal(L, name);
    bool yes = lua_toboolean(L, -1) != 0;
    lua_pop(L, 1);
    return yes;
  }

  lua_State* L = nullptr;
};

TEST_F(Embed, ACppTimerOnTheThreadsLoopFiresWhileLuaRunsCorio) {
  corio::Timer t(Loop::current());
  bool fired = false;
  t.start(10ms, [&] { fired = true; });
  // One loop: corio.run() waits for the C++ timer (it holds the loop) and returns once it
  // fired. A module with its own core would find nothing to run and return at once.
  ASSERT_EQ(run("corio.run()"), "");
  EXPECT_TRUE(fired) << "corio.run() (" CORIO_EMBED_LUA ") did not run the host's loop";
}

TEST_F(Embed, ALuaTimerFiresWhileCppRunsTheThreadsLoop) {
  ASSERT_EQ(run("fired = false; corio.after(0.01, function() fired = true end)"), "");
  Loop& loop = Loop::current();
  EXPECT_TRUE(loop.alive()) << "the Lua timer does not hold the host's loop";
  EXPECT_TRUE(corio_test::run_until(loop, [&] { return global_true("fired"); }, 2s))
      << "Loop::current().run_once() did not run corio.after's timer (" CORIO_EMBED_LUA ")";
  loop.run();  // returns: nothing else holds the loop
}

TEST_F(Embed, LuaThreadsAndCppTasksTakeTurnsOnOneLoop) {
  // A Lua thread sleeping and a C++ repeating timer: both make progress under either side.
  ASSERT_EQ(run("ticks = 0\n"
                "corio.spawn(function() for _ = 1, 3 do corio.sleep(0.005); ticks = ticks + 1 end end)"),
            "");
  corio::Timer t(Loop::current());
  int cpp_ticks = 0;
  t.start(5ms, [&] {
    if (++cpp_ticks == 3) t.stop();
  }, 5ms);
  ASSERT_EQ(run("corio.run()"), "");  // until both are done
  EXPECT_EQ(cpp_ticks, 3);
  ASSERT_EQ(run("assert(ticks == 3, 'lua ticks: ' .. ticks)"), "");
}

}  // namespace
