"""Provisioning of the servers from infra/orgs.yaml: `apply.provision` plans each area (`kafka`,
`seaweedfs`, `minio`, the plan model in `plan`) and applies it. Method: docs/provisioning.md."""
