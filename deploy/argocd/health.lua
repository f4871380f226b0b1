-- Argo CD health check for Tributary's kinds (tributary.io): every kind writes the same kstatus
-- conditions (Ready, Reconciling, Stalled, each with a reason) and status.observedGeneration,
-- so this one script serves them all: deploy/argocd/argocd-cm.yaml installs it once per kind. Argo CD runs it with the object as `obj`.
--
--   no status, or observedGeneration behind metadata.generation  -> Progressing
--   Stalled=True (needs a person: PartitionDecrease, ResourceConflict...) -> Degraded
--   Ready=False with reason Paused or DryRun                      -> Suspended
--   Ready=True                                                    -> Healthy
--   Reconciling=True, or Ready Unknown                            -> Progressing
--   Ready=False otherwise                                         -> Degraded
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first status"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status.conditions, "Ready")
local reconciling = condition(status.conditions, "Reconciling")
local stalled = condition(status.conditions, "Stalled")
if ready ~= nil and ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's Ready condition"
  return hs
end
if ready.status == "False" and (ready.reason == "Paused" or ready.reason == "DryRun") then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if (reconciling ~= nil and reconciling.status == "True") or ready.status == "Unknown" then
  hs.status = "Progressing"
  if reconciling ~= nil and reconciling.status == "True" then
    hs.message = describe(reconciling)
  else
    hs.message = describe(ready)
  end
  return hs
end
hs.status = "Degraded"
hs.message = describe(ready)
return hs
