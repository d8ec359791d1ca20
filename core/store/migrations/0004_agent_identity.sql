-- Agent identity: which machine credential owns an agent identifier. The hub refuses a hello
-- for an agent owned by another credential, and a credential owns at most one agent, so one
-- tenant credential can never claim (and take over the traffic of) another cluster's agent.
-- Rows from before this migration have no owner: the first credential with the Agent role that
-- connects as that agent becomes its owner.
ALTER TABLE agents ADD COLUMN credential_id UUID;
ALTER TABLE agents ADD CONSTRAINT agents_credential_fk
    FOREIGN KEY (tenant_id, credential_id) REFERENCES credentials (tenant_id, id) ON DELETE SET NULL (credential_id);
CREATE UNIQUE INDEX agents_one_per_credential ON agents (tenant_id, credential_id)
    WHERE credential_id IS NOT NULL;

-- People are identified by their issuer and subject, not by an email address (which an identity
-- provider may let its users change or reuse). Filled on first sign-in after an invitation.
ALTER TABLE users ADD COLUMN issuer TEXT;
ALTER TABLE users ADD COLUMN subject TEXT;
ALTER TABLE users ADD CONSTRAINT users_identity_both CHECK ((issuer IS NULL) = (subject IS NULL));
CREATE UNIQUE INDEX users_identity ON users (tenant_id, issuer, subject) WHERE issuer IS NOT NULL;
