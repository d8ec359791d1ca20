-- Tenancy and access: organizations, tenants, users, roles and their grants, who holds which role,
-- machine credentials, connected agents, encrypted secrets, metric providers, the audit log.
--
-- Tenant-scoped tables key on (tenant_id, id) so that every child row's foreign key names the
-- tenant too: a row can only ever point at a parent of its own tenant.

CREATE TABLE organizations (
    id          UUID        PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE CHECK (name <> ''),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id              UUID        PRIMARY KEY,
    organization_id UUID        REFERENCES organizations (id) ON DELETE RESTRICT,
    slug            TEXT        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name            TEXT        NOT NULL CHECK (name <> ''),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tenants_organization ON tenants (organization_id) WHERE organization_id IS NOT NULL;

CREATE TABLE users (
    tenant_id    UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    email        TEXT        NOT NULL CHECK (email <> ''),
    display_name TEXT        NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);

CREATE TABLE roles (
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          UUID        NOT NULL,
    name        TEXT        NOT NULL CHECK (name <> ''),
    built_in    BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- A grant is one permission a role carries (for example `deployments:write`).
CREATE TABLE role_grants (
    tenant_id   UUID        NOT NULL,
    role_id     UUID        NOT NULL,
    permission  TEXT        NOT NULL CHECK (permission <> ''),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, role_id, permission),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

-- Which principal (a user or a machine credential) holds which role.
CREATE TABLE role_bindings (
    tenant_id      UUID        NOT NULL,
    role_id        UUID        NOT NULL,
    principal_kind TEXT        NOT NULL CHECK (principal_kind IN ('user', 'credential')),
    principal_id   UUID        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal_kind, principal_id, role_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX role_bindings_role ON role_bindings (tenant_id, role_id);

-- Machine credentials for the OAuth2 client-credentials grant. Only the argon2 hash of the
-- secret is kept. `client_id` is unique across tenants so it alone can name the credential.
CREATE TABLE credentials (
    tenant_id    UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    name         TEXT        NOT NULL CHECK (name <> ''),
    client_id    TEXT        NOT NULL UNIQUE CHECK (client_id <> ''),
    secret_hash  TEXT        NOT NULL CHECK (secret_hash <> ''),
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Agents as last seen by a hub replica. `session` grows on every connect so a replica that lost
-- the agent cannot record heartbeats or a disconnect for the newer connection.
CREATE TABLE agents (
    tenant_id          UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                 UUID        NOT NULL,
    identifier         TEXT        NOT NULL CHECK (identifier <> ''),
    agent_version      TEXT        NOT NULL DEFAULT '',
    kubernetes_version TEXT        NOT NULL DEFAULT '',
    hub_replica        TEXT,
    session            BIGINT      NOT NULL DEFAULT 0,
    connected_at       TIMESTAMPTZ,
    last_heartbeat_at  TIMESTAMPTZ,
    disconnected_at    TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, identifier)
);

-- Secrets are encrypted by the caller (AEAD); only ciphertext, nonce and key id are stored.
CREATE TABLE secrets (
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,253}$'),
    ciphertext  BYTEA       NOT NULL,
    nonce       BYTEA       NOT NULL,
    key_id      TEXT        NOT NULL CHECK (key_id <> ''),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE metric_providers (
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL CHECK (name <> ''),
    kind        TEXT        NOT NULL CHECK (kind IN ('prometheus', 'datadog', 'newrelic')),
    base_url    TEXT        NOT NULL CHECK (base_url <> ''),
    -- field name -> secret name, e.g. {"apiKey": "datadog-api-key"}; never secret values.
    secret_refs JSONB       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(secret_refs) = 'object'),
    -- the agent that relays queries into a private network, when the provider is not public
    agent       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE audit_log (
    id            BIGSERIAL   PRIMARY KEY,
    tenant_id     UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor         TEXT        NOT NULL CHECK (actor <> ''),
    action        TEXT        NOT NULL CHECK (action <> ''),
    resource_kind TEXT        NOT NULL CHECK (resource_kind <> ''),
    resource_id   TEXT        NOT NULL,
    details       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);
