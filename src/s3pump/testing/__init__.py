"""Test helpers shipped with s3pump (SeaweedFS fixtures, fault-injecting proxy)."""
