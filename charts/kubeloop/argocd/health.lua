-- Argo CD health check for the kubeloop resources: TrainingRun, ModelVersion and DriftMonitor.
-- One script serves all three kinds (it branches on obj.kind); the chart README's argocd-cm snippet is
-- generated from this file. Conditions are always looked up by type, never by position.
local hs = { status = "Progressing", message = "Waiting for the kubeloop operator" }

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local function is(c, value)
  return c ~= nil and c.status == value
end

local function say(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

-- Nothing the status says is current until the operator has observed the latest generation.
if obj.status == nil or obj.status.observedGeneration == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local stalled = condition("Stalled")
if is(stalled, "True") then
  hs.status = "Degraded"
  hs.message = say(stalled, "Stalled")
  return hs
end

if obj.kind == "TrainingRun" then
  local done = condition("Succeeded")
  if is(done, "True") then
    hs.status = "Healthy"
  elseif is(done, "False") then
    hs.status = "Degraded"
  end
  hs.message = say(done, "Training")
  return hs
end

if obj.kind == "ModelVersion" then
  local back = condition("RolledBack")
  if is(back, "True") then
    hs.status = "Degraded"
    hs.message = say(back, "Rolled back")
    return hs
  end
  if obj.status.rollout ~= nil and obj.status.rollout.phase == "Paused" then
    hs.status = "Suspended"
    hs.message = "Waiting for approval of canary step " .. tostring(obj.status.rollout.step)
    return hs
  end
  local moving = condition("Progressing")
  if is(moving, "True") then
    hs.message = say(moving, "Rolling out")
    return hs
  end
end

if obj.kind == "DriftMonitor" and obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended by spec.suspend"
  return hs
end

local ready = condition("Ready")
if is(ready, "True") then
  hs.status = "Healthy"
elseif is(ready, "False") then
  hs.status = "Degraded"
end
hs.message = say(ready, hs.message)
if obj.kind == "DriftMonitor" and is(condition("Drifted"), "True") then
  -- Drift is news about the data, not a fault of the monitor: it stays Healthy and says so.
  hs.message = "Drift detected: " .. say(condition("Drifted"), "see status.features")
end
return hs
