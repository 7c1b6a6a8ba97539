"""Event contracts: the Avro schema registry, the codec (framing), and one module per event type that
encodes, decodes and checks its content (dataset_chunk, release_manifest, policy_update); docs/contracts.md."""
