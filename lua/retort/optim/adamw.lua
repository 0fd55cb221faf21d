-- optim.AdamW: Adam with decoupled weight decay; see adam.lua (both share one update).
return require("retort.optim.adam").AdamW
