// Fedify follows one of lien's tag groups (FEP-1b12) and checks the group's signatures.
//
//   node group-peer.mjs LIEN_ORIGIN PORT TAG
//
// 1. With Fedify's own document loader, looks up acct:TAG@LIEN_HOST by WebFinger and checks it is
//    a `Group` with an inbox, an outbox, followers and an RSA public key it owns.
// 2. Serves a Fedify `Federation` with one actor, `fedi`, on http://localhost:PORT (PORT 0: any
//    free port), and prints `READY http://localhost:PORT`.
// 3. Follows the group with Fedify's `sendActivity` (RFC 9421 first, draft-cavage after lien's
//    401); prints `FOLLOWED` once lien answered 2xx.
// 4. Waits (at most 60 s) until its inbox has taken the group's `Accept` of that Follow and an
//    `Announce` by the group (a boost of a new story: Fedify's server is not groups-aware), both
//    through Fedify's signature-verified inbox path, printing `GOT Accept ID` and
//    `GOT Announce ID`, then prints one line `RESULT {json}` and exits 0.
//
// As in peer.mjs: errors exit non-zero with `ERROR: ...` on stderr, loopback peers are allowed,
// and the WebFinger query Fedify makes over https goes to lien over http.

import { AsyncLocalStorage } from "node:async_hooks";
import http from "node:http";
import process from "node:process";

if (!("navigator" in globalThis)) {
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node}` };
}

const { configure, defaultTextFormatter } = await import("@logtape/logtape");
const { createFederation, generateCryptoKeyPair, MemoryKvStore, verifyRequestDetailed } =
  await import("@fedify/fedify");
const { Accept, Announce, CryptographicKey, Endpoints, Follow, Group, Person } = await import(
  "@fedify/vocab"
);

const WAIT_FOR_ACTIVITIES_MS = 60_000;
const WHOLE_RUN_MS = 150_000;

function fail(message, error) {
  const detail = error == null ? "" : `\n${error?.stack ?? error}`;
  process.stderr.write(`ERROR: ${message}${detail}\n`);
  process.exit(1);
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

const [lienOrigin, portArg, tag] = process.argv.slice(2);
if (lienOrigin == null || portArg == null || tag == null) {
  fail("usage: node group-peer.mjs LIEN_ORIGIN PORT TAG");
}
const lien = new URL(lienOrigin);
const lienHost = lien.host;
const port = Number(portArg);

setTimeout(() => fail(`gave up after ${WHOLE_RUN_MS / 1000} s`), WHOLE_RUN_MS).unref();
process.on("unhandledRejection", (error) => fail("unhandled rejection", error));

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { stderr: (record) => process.stderr.write(defaultTextFormatter(record)) },
  loggers: [
    { category: "fedify", lowestLevel: process.env.FEDIFY_LOG ?? "warning", sinks: ["stderr"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
  ],
});

const knocks = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const url = new URL(request.url);
  if (url.protocol === "https:" && url.host === lienHost && url.pathname === "/.well-known/webfinger") {
    url.protocol = "http:";
    return realFetch(new Request(url, request));
  }
  const response = await realFetch(request);
  if (request.method === "POST" && url.host === lienHost) {
    knocks.push({
      url: url.href,
      spec: request.headers.has("signature-input") ? "rfc9421" : "draft-cavage",
      status: response.status,
    });
  }
  return response;
};

const kv = new MemoryKvStore();
const federation = createFederation({
  kv,
  allowPrivateAddress: true,
  skipSignatureVerification: false,
  userAgent: { software: "lien-interop-fedify" },
});

// --- 1. The group, as Fedify sees it.

const lookupCtx = federation.createContext(new URL("http://localhost/"), undefined);
const handle = `acct:${tag}@${lienHost}`;
const group = await lookupCtx.lookupObject(handle).catch((e) => fail(`looking up ${handle}`, e));
if (!(group instanceof Group)) fail(`${handle} is not a Group: ${group?.constructor?.name ?? group}`);
const expectedId = `${lien.origin}/t/${tag}`;
if (group.id?.href !== expectedId) fail(`${handle} resolved to ${group.id?.href}, not ${expectedId}`);
if (group.preferredUsername !== tag) fail(`preferredUsername is ${group.preferredUsername}`);
if (group.inboxId == null || group.outboxId == null || group.followersId == null) {
  fail(`${handle} lacks an inbox, outbox or followers collection`);
}
const publicKey = await group.getPublicKey().catch((e) => fail("reading the group's publicKey", e));
if (!(publicKey instanceof CryptographicKey) || publicKey.publicKey == null) fail("the group has no usable key");
if (publicKey.ownerId?.href !== group.id.href) fail(`the key's owner is ${publicKey.ownerId?.href}`);

// --- 2. One Fedify actor.

const keyPairs = [await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"), await generateCryptoKeyPair("Ed25519")];
const ACTOR = "fedi";
federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ACTOR) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      url: ctx.getActorUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === ACTOR ? keyPairs : []));

const received = { accept: null, announces: [] };
const signers = new Map();
const unverified = [];
let followId = null;
let done = null;
const finished = new Promise((resolve) => (done = resolve));
const checkDone = () => received.accept != null && received.announces.length > 0 && done();

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, async (_ctx, accept) => {
    const entry = {
      id: accept.id?.href,
      actor: accept.actorId?.href,
      object: accept.objectId?.href,
      signedBy: signers.get(accept.id?.href) ?? null,
    };
    if (entry.actor !== group.id.href) throw new Error(`Accept by ${entry.actor}, not the group`);
    if (entry.object !== followId) throw new Error(`Accept of ${entry.object}, not our Follow ${followId}`);
    received.accept = entry;
    say(`GOT Accept ${entry.id}`);
    checkDone();
  })
  .on(Announce, async (_ctx, announce) => {
    const entry = {
      id: announce.id?.href,
      actor: announce.actorId?.href,
      object: announce.objectId?.href,
      signedBy: signers.get(announce.id?.href) ?? null,
    };
    if (entry.actor !== group.id.href) throw new Error(`Announce by ${entry.actor}, not the group`);
    received.announces.push(entry);
    say(`GOT Announce ${entry.id}`);
    checkDone();
  })
  .onUnverifiedActivity((_ctx, activity, reason) => {
    unverified.push({ id: activity.id?.href, type: activity.constructor.name, reason: reason.type });
    return undefined;
  })
  .onError((_ctx, error) => process.stderr.write(`inbox listener failed: ${error?.stack ?? error}\n`));

let origin = null;
const server = http.createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(new URL(req.url, origin), {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    if (req.method === "POST") {
      const verification = await verifyRequestDetailed(request.clone(), {
        documentLoader: lookupCtx.documentLoader,
        contextLoader: lookupCtx.contextLoader,
      });
      const activityId = JSON.parse(Buffer.concat(chunks).toString("utf8"))?.id;
      if (verification.verified) {
        signers.set(activityId, { keyId: verification.key.id?.href, owner: verification.key.ownerId?.href });
      } else {
        process.stderr.write(`signature on ${activityId} not verified: ${verification.reason.type}\n`);
      }
    }
    const response = await federation.fetch(request, { contextData: undefined });
    const body = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(body);
  } catch (error) {
    process.stderr.write(`serving ${req.method} ${req.url} failed: ${error?.stack ?? error}\n`);
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error");
  }
});
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(port, "127.0.0.1", resolve);
});
origin = `http://localhost:${server.address().port}`;
say(`READY ${origin}`);

// --- 3. Follow the group.

const ctx = federation.createContext(new URL(origin), undefined);
followId = `${origin}/follows/${crypto.randomUUID()}`;
try {
  await ctx.sendActivity(
    { identifier: ACTOR },
    group,
    new Follow({ id: new URL(followId), actor: ctx.getActorUri(ACTOR), object: group.id }),
  );
} catch (error) {
  fail(`lien refused the Follow (knocks: ${JSON.stringify(knocks)})`, error);
}
const last = knocks.at(-1);
if (last == null || last.status < 200 || last.status >= 300) fail(`no 2xx for the Follow: ${JSON.stringify(knocks)}`);
say("FOLLOWED");

// --- 4. The group's Accept and Announce.

const timer = setTimeout(() => {
  fail(
    `after ${WAIT_FOR_ACTIVITIES_MS / 1000} s: accept ${JSON.stringify(received.accept)}, ` +
      `${received.announces.length} Announce; unverified: ${JSON.stringify(unverified)}`,
  );
}, WAIT_FOR_ACTIVITIES_MS);
await finished;
clearTimeout(timer);

const result = {
  group: {
    id: group.id.href,
    preferredUsername: group.preferredUsername,
    inbox: group.inboxId.href,
    outbox: group.outboxId.href,
    followers: group.followersId.href,
    publicKeyId: publicKey.id?.href,
    publicKeyOwner: publicKey.ownerId?.href,
  },
  follow: { id: followId, knocks },
  accept: received.accept,
  announces: received.announces,
  unverified,
};
server.close();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
