"""Object stores behind one protocol (:mod:`.base`): real S3 (:mod:`.s3`, awscrt, and boto3 for rare
calls) and an in-memory twin for tests (:mod:`.memory`). Import from the modules; this package
imports nothing, so that the protocol does not load awscrt."""
