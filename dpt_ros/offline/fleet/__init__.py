"""`dpt-ros fleet`: the bag tool's work over many bags on a Ray cluster (docs/fleet.md).

No module here imports Ray at module level (`cluster.py` imports it inside a function, after
the loopback settings): `dpt-ros` and `dpt-ros fleet --help` work without the `fleet` extra.

Modules, one job each: `plan` (inputs → bags → units, from metadata), `units` (the unit
record and the log-time shard arithmetic), `manifest` (what made the outputs, per-unit
rows), `commit` (staging, atomic unit commit with its done-marker, stale staging swept),
`assemble` (a bag's committed units → one rosbag2 directory), `runner` (one unit, inside a
worker), `actor` (the worker: the model loaded once per process), `scheduler` (the bounded
loop over Ray actors), `cluster` (Ray started / joined, loopback-only by default),
`remote` (bags behind URLs), `summary` (the run's report and JSON), `driver` (all of it in
order), `cli` (options).
"""
