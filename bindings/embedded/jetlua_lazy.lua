-- The parts of `jet` written in Lua load on first use: jet.retry, jet.fail,
-- jet.idempotent, jet.pipeline, jet.micro (bindings/jl_open.c; embedded in the
-- binary at build time as lazy_src, chunk name "=jetlua.lazy"). Called once
-- with the jet table.
local jet = ...
local lazy = { retry = function() return require 'jetlua.retry' end,
  fail = function() return require('jetlua.retry').fail end,
  idempotent = function() return require('jetlua.idempotent').idempotent end,
  pipeline = function() return require('jetlua.pipeline').pipeline end,
  micro = function() return require 'jetlua.micro' end }
setmetatable(jet, { __index = function(t, k)
  local f = lazy[k]; if not f then return nil end
  local v = f(); rawset(t, k, v); return v end })
