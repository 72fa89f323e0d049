// An independent ActivityPub implementation (Fedify, from npm) talking to a running lien.
//
//   node peer.mjs LIEN_ORIGIN PORT STORY_URL [USERNAME]
//
// 1. With Fedify's own document loader, looks up acct:USERNAME@LIEN_HOST by WebFinger and the
//    story at STORY_URL, and checks what they are (a Person with a public key, a Page with a name
//    and a Link attachment).
// 2. Serves a Fedify `Federation` with one actor, `fedi` (a fresh RSA key: lien verifies
//    rsa-sha256), on http://localhost:PORT (PORT 0: any free port), and prints
//    `READY http://localhost:PORT`.
// 3. Sends a `Follow` to the lien user with Fedify's `sendActivity`, which signs RFC 9421 first
//    (which lien verifies) and would retry draft-cavage after a 401; prints `FOLLOWED` once lien
//    answered 2xx.
// 4. Waits (at most 60 s) until its inbox has taken lien's `Accept` of that Follow and a `Create`
//    of a `Page`, both through Fedify's signature-verified inbox path (printing `GOT Accept ID`
//    and `GOT Create ID` as each arrives), then prints one line `RESULT {json}` and exits 0.
//
// Anything else exits non-zero with a line `ERROR: ...` on stderr. Stdout carries only the
// protocol lines above; Fedify's own logs go to stderr (FEDIFY_LOG=debug for more).
//
// This is a test on localhost: private and loopback addresses are allowed explicitly, and since
// the lien under test speaks plain http, the one request Fedify insists on making over https
// (the WebFinger query for an acct: handle) is sent to lien over http instead; see `fetch` below.

import { AsyncLocalStorage } from "node:async_hooks";
import http from "node:http";
import process from "node:process";

// Fedify 2.3 targets Node 22, which has a global `navigator`; Node 20 does not, and Fedify reads
// `navigator?.userAgent` (a ReferenceError without the global). Set before Fedify is loaded.
if (!("navigator" in globalThis)) {
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node}` };
}

const { configure, defaultTextFormatter } = await import("@logtape/logtape");
const {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
  verifyRequestDetailed,
} = await import("@fedify/fedify");
const {
  Accept,
  Create,
  CryptographicKey,
  Endpoints,
  Follow,
  Link,
  Page,
  Person,
} = await import("@fedify/vocab");

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

const [lienOrigin, portArg, storyUrl, username = "alice"] = process.argv.slice(2);
if (lienOrigin == null || portArg == null || storyUrl == null) {
  fail("usage: node peer.mjs LIEN_ORIGIN PORT STORY_URL [USERNAME]");
}
const lien = new URL(lienOrigin);
const lienHost = lien.host;
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port: ${portArg}`);

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

// Every request Fedify makes goes through the global fetch. Two things happen here:
// - POSTs to lien are recorded with the signature scheme they carried and lien's answer, to show
//   which scheme lien took (RFC 9421 at the first knock, or draft-cavage after a 401);
// - Fedify looks up `acct:` handles over https only (RFC 7033 says so); lien here has no TLS, so
//   exactly that request, the WebFinger query to lien's host, is sent over http. The document it
//   points to is then fetched at the http address lien gives, unchanged.
const knocks = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const url = new URL(request.url);
  if (url.protocol === "https:" && url.host === lienHost && url.pathname === "/.well-known/webfinger") {
    url.protocol = "http:";
    return realFetch(new Request(url, request));
  }
  const body = request.method === "POST" ? await request.clone().text() : null;
  const response = await realFetch(request);
  if (request.method === "POST" && url.host === lienHost) {
    knocks.push({
      url: url.href,
      spec: request.headers.has("signature-input") ? "rfc9421" : request.headers.has("signature") ? "draft-cavage" : "none",
      // Whether the body carried Fedify's Object Integrity Proof (FEP-8b32), which lien ignores.
      proof: body.includes('"proof"'),
      status: response.status,
    });
  }
  return response;
};

// --- 1. Look lien's objects up, as any Fedify server would.

const kv = new MemoryKvStore();
const federation = createFederation({
  kv,
  // Loopback peers are refused by default (SSRF guard); this is a test on localhost.
  allowPrivateAddress: true,
  // Said explicitly: every activity reaching a listener below had its signature verified.
  skipSignatureVerification: false,
  userAgent: { software: "lien-interop-fedify" },
});

const lookupCtx = federation.createContext(new URL("http://localhost/"), undefined);
const handle = `acct:${username}@${lienHost}`;
const person = await lookupCtx.lookupObject(handle).catch((e) => fail(`looking up ${handle}`, e));
if (!(person instanceof Person)) fail(`${handle} is not a Person: ${person?.constructor?.name ?? person}`);
const expectedActorId = `${lien.origin}/users/${username}`;
if (person.id?.href !== expectedActorId) fail(`${handle} resolved to ${person.id?.href}, not ${expectedActorId}`);
if (person.preferredUsername !== username) fail(`preferredUsername is ${person.preferredUsername}`);
if (person.inboxId == null) fail(`${handle} has no inbox`);
const publicKey = await person.getPublicKey().catch((e) => fail("reading the actor's publicKey", e));
if (!(publicKey instanceof CryptographicKey) || publicKey.publicKey == null) fail(`${handle} has no usable publicKey`);
if (publicKey.ownerId?.href !== person.id.href) fail(`the key's owner is ${publicKey.ownerId?.href}`);
if (publicKey.publicKey.algorithm.name !== "RSASSA-PKCS1-v1_5") fail(`the key is ${publicKey.publicKey.algorithm.name}`);

const story = await lookupCtx.lookupObject(storyUrl).catch((e) => fail(`looking up ${storyUrl}`, e));
if (!(story instanceof Page)) fail(`${storyUrl} is not a Page: ${story?.constructor?.name ?? story}`);
if (story.id?.href !== storyUrl) fail(`the story's id is ${story.id?.href}`);
if (story.attributionId?.href !== person.id.href) fail(`the story is attributed to ${story.attributionId?.href}`);
if (!story.name) fail("the story has no name");
const storyLinks = [];
for await (const attachment of story.getAttachments()) {
  if (attachment instanceof Link) storyLinks.push(attachment.href?.href);
}
if (storyLinks.length === 0) fail("the story has no Link attachment");

// --- 2. Serve one Fedify actor.

// RSA for HTTP signatures (what lien verifies), Ed25519 for the Object Integrity Proofs Fedify
// attaches to what it sends (FEP-8b32), as Fedify-based servers publish both.
const keyPairs = [
  await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
  await generateCryptoKeyPair("Ed25519"),
];
const ACTOR = "fedi";

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ACTOR) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      summary: "An independent ActivityPub implementation, in lien's tests.",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      url: ctx.getActorUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === ACTOR ? keyPairs : []));

// What the inbox took, through the verified path only.
const received = { accept: null, creates: [] };
// Keys that signed each inbox POST, by activity id, from Fedify's own verifyRequestDetailed.
const signers = new Map();
const unverified = [];
let followId = null;
let done = null;
const finished = new Promise((resolve) => (done = resolve));

function checkDone() {
  if (received.accept != null && received.creates.length > 0) done();
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, async (ctx, accept) => {
    const entry = {
      id: accept.id?.href,
      actor: accept.actorId?.href,
      object: accept.objectId?.href,
      signedBy: signers.get(accept.id?.href) ?? null,
    };
    if (entry.actor !== person.id.href) throw new Error(`Accept by ${entry.actor}, not ${person.id.href}`);
    if (followId == null || entry.object !== followId) throw new Error(`Accept of ${entry.object}, not our Follow ${followId}`);
    received.accept = entry;
    say(`GOT Accept ${entry.id}`);
    checkDone();
  })
  .on(Create, async (ctx, create) => {
    const object = await create.getObject();
    const attachments = [];
    for await (const a of object?.getAttachments() ?? []) {
      if (a instanceof Link) attachments.push({ type: "Link", href: a.href?.href });
    }
    const entry = {
      id: create.id?.href,
      actor: create.actorId?.href,
      signedBy: signers.get(create.id?.href) ?? null,
      object: {
        type: object?.constructor?.name,
        id: object?.id?.href,
        name: object?.name?.toString() ?? null,
        attributedTo: object?.attributionId?.href,
        attachments,
      },
    };
    if (entry.actor !== person.id.href) throw new Error(`Create by ${entry.actor}`);
    if (!(object instanceof Page)) throw new Error(`Create of a ${entry.object.type}, not a Page`);
    received.creates.push(entry);
    say(`GOT Create ${entry.id}`);
    checkDone();
  })
  .onUnverifiedActivity((_ctx, activity, reason) => {
    // Record why, and let Fedify answer 401 as it does by default.
    unverified.push({ id: activity.id?.href, type: activity.constructor.name, reason: reason.type });
    process.stderr.write(`unverified ${activity.constructor.name} ${activity.id?.href}: ${JSON.stringify(reason, (k, v) => (v instanceof URL ? v.href : v))}\n`);
    return undefined;
  })
  .onError((_ctx, error) => {
    process.stderr.write(`inbox listener failed: ${error?.stack ?? error}\n`);
  });

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
      // Fedify's own check of the request's HTTP signature, recorded beside what the inbox does
      // with it (the inbox verifies again, by itself, before any listener runs).
      const verification = await verifyRequestDetailed(request.clone(), {
        documentLoader: lookupCtx.documentLoader,
        contextLoader: lookupCtx.contextLoader,
      });
      const activityId = JSON.parse(Buffer.concat(chunks).toString("utf8"))?.id;
      if (verification.verified) {
        signers.set(activityId, {
          keyId: verification.key.id?.href,
          owner: verification.key.ownerId?.href,
          spec: request.headers.has("signature-input") ? "rfc9421" : "draft-cavage",
        });
      } else {
        process.stderr.write(`signature on ${activityId} not verified: ${verification.reason.type}\n`);
      }
    }
    const response = await federation.fetch(request, { contextData: undefined });
    const body = Buffer.from(await response.arrayBuffer());
    if (req.method === "POST") {
      process.stderr.write(`inbox ${req.url} answered ${response.status} ${response.status >= 300 ? body.toString("utf8") : ""}\n`);
    }
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
  // Bound to loopback; named `localhost` in every URL, as federation needs a host name.
  server.listen(port, "127.0.0.1", resolve);
});
origin = `http://localhost:${server.address().port}`;
say(`READY ${origin}`);

// --- 3. Follow lien's user, signed by Fedify (RFC 9421 first, draft-cavage after a refusal).

const ctx = federation.createContext(new URL(origin), undefined);
followId = `${origin}/follows/${crypto.randomUUID()}`;
try {
  await ctx.sendActivity(
    { identifier: ACTOR },
    person,
    new Follow({ id: new URL(followId), actor: ctx.getActorUri(ACTOR), object: person.id }),
  );
} catch (error) {
  fail(`lien refused the Follow (knocks: ${JSON.stringify(knocks)})`, error);
}
const accepted = knocks.at(-1);
if (accepted == null || accepted.status < 200 || accepted.status >= 300) {
  fail(`the Follow did not get a 2xx from lien: ${JSON.stringify(knocks)}`);
}
say("FOLLOWED");

// --- 4. Wait for lien's Accept and Create(Page), then report.

const timer = setTimeout(() => {
  fail(
    `after ${WAIT_FOR_ACTIVITIES_MS / 1000} s the inbox has ${received.accept ? "an" : "no"} Accept and ` +
      `${received.creates.length} Create(Page); unverified: ${JSON.stringify(unverified)}`,
  );
}, WAIT_FOR_ACTIVITIES_MS);
await finished;
clearTimeout(timer);

const result = {
  fedify: "2.3.6",
  node: process.versions.node,
  actor: ctx.getActorUri(ACTOR).href,
  lookup: {
    handle,
    person: {
      id: person.id.href,
      preferredUsername: person.preferredUsername,
      inbox: person.inboxId.href,
      publicKeyId: publicKey.id?.href,
      publicKeyOwner: publicKey.ownerId?.href,
      publicKeyAlgorithm: publicKey.publicKey.algorithm.name,
    },
    story: {
      type: "Page",
      id: story.id.href,
      name: story.name.toString(),
      url: story.url instanceof URL ? story.url.href : story.url?.href?.href,
      attributedTo: story.attributionId.href,
      links: storyLinks,
    },
  },
  follow: { id: followId, knocks },
  accept: received.accept,
  creates: received.creates,
  unverified,
};
server.close();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
