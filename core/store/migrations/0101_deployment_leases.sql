-- Which scheduler pass holds a deployment (svc-scheduler's `exclusive`): one pass of a
-- deployment at a time, across replicas, without holding a connection for the pass. A lease is
-- taken and released in single statements; its holder renews it while the pass runs, and it
-- expires if the holder dies. A released lease is deleted; only a killed holder leaves a row,
-- which the next pass of the deployment takes over once it expired. Not tenant data: ids are
-- unique across tenants and nothing else is stored.
CREATE TABLE deployment_leases (
    deployment_id uuid PRIMARY KEY,
    holder        uuid        NOT NULL,
    expires_at    timestamptz NOT NULL
);
