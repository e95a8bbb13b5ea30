// core.mqtt_client (lmqtt.cpp): corio::mqtt::Client for lua/corio/mqtt.lua.
#pragma once
#include "lcompat.hpp"

namespace corio::lua {

void register_mqtt(lua_State* L);  // into the module table at -1, the runtime at -2

}  // namespace corio::lua
