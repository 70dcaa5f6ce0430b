"""Start-up configuration without torch or the model: the parameter table (params), the
node's YAML parameter file (params_file), launch arguments → command lines (launch_args),
the shipped rviz config (rviz_config), and the vocabularies and records they share with
`dpt_ros.core` (vocabulary, settings). Below `dpt_ros.core` in the layers: core imports
config, never the other way round."""
