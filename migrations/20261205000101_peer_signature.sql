-- Which HTTP signature scheme each peer host takes, so that deliveries are signed the way it
-- accepts from the first try, across restarts (src/federation/delivery.rs): 'rfc9421' (RFC 9421
-- HTTP Message Signatures) or 'cavage' (draft-cavage, what every server verifies). Learned from
-- what a delivery's answer showed, and from a peer signing its own requests with RFC 9421.
create table peer_signature (
    host text primary key,
    scheme text not null check (scheme in ('rfc9421', 'cavage')),
    updated_at timestamptz not null default now()
);
