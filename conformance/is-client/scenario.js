// Seed workflow of the IOTA IS Audit Trail use case, run with the
// unmodified @iota/is-client@0.1.19 against `lakeproof serve`.
//
// Environment: GATEWAY_URL (http://127.0.0.1:PORT), API_KEY, ADMIN_ID and
// ADMIN_SECRET (a did:key made Admin with `lakeproof serve --admin`, and its
// base58 seed). Exits non-zero on the first failed step.
'use strict';
const { IdentityClient, ChannelClient, ApiVersion } = require('@iota/is-client');

const config = {
  isGatewayUrl: process.env.GATEWAY_URL,
  apiVersion: ApiVersion.v01,
  useGatewayUrl: true,
  apiKey: process.env.API_KEY,
};
const run = Math.random().toString(36).slice(2, 8);
let passed = 0;
let failed = 0;

function ok(cond, what, detail) {
  if (!cond) {
    failed++;
    console.log(`not ok - ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    throw new Error(`step failed: ${what}`);
  }
  passed++;
  console.log(`ok - ${what}`);
}

// expectStatus runs fn and requires an HTTP error with the given status and an {error} body.
async function expectStatus(fn, status, what) {
  try {
    await fn();
  } catch (e) {
    const got = e.response && e.response.status;
    const body = e.response && e.response.data;
    ok(got === status && body && typeof body.error === 'string', what, { status: got, body });
    return body;
  }
  ok(false, what, 'request succeeded');
}

async function identity(creator, username, claimType) {
  const client = new IdentityClient(config);
  if (creator) await client.authenticate(creator.doc.id, creator.key.secret);
  const id = await client.create(username, claimType, { name: username });
  ok(id && id.doc && id.doc.id.startsWith('did:key:z') && id.key && id.key.encoding === 'base58' && id.key.secret,
    `create identity ${username} ({doc, key} shape)`);
  return id;
}

// sseOneEntry opens the lakeproof event stream of a channel with the
// client's JWT and resolves with the first entry event.
function sseOneEntry(url, jwt) {
  const ac = new AbortController();
  const p = (async () => {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${jwt}`, Accept: 'text/event-stream' }, signal: ac.signal });
    if (res.status !== 200) throw new Error(`event stream status ${res.status}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('event stream ended');
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const lines = block.split('\n');
        if (lines.includes('event: entry')) {
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
          ac.abort();
          return JSON.parse(data);
        }
      }
    }
  })();
  const timeout = new Promise((_, rej) => setTimeout(() => { ac.abort(); rej(new Error('no event within 10s')); }, 10000));
  return Promise.race([p, timeout]);
}

async function main() {
  const admin = { doc: { id: process.env.ADMIN_ID }, key: { secret: process.env.ADMIN_SECRET } };

  // 1. Company X registers and gets verified; it registers employee Y and sensor Z.
  const companyX = await identity(null, `company-x-${run}`, 'Organization');
  const adminIdentity = new IdentityClient(config);
  await adminIdentity.authenticate(admin.doc.id, admin.key.secret);
  const vcX = await adminIdentity.createCredential(undefined, companyX.doc.id, 'VerifiedIdentityCredential', 'Organization', { name: 'Company X' });
  ok(vcX && vcX.proof && vcX.proof.signatureValue && vcX.credentialSubject.id === companyX.doc.id, 'admin issues a credential to company X');
  const check = await adminIdentity.checkCredential(vcX);
  ok(check && check.isVerified === true, 'company X credential checks', check);
  const employeeY = await identity(companyX, `employee-y-${run}`, 'Person');
  const sensorZ = await identity(companyX, `sensor-z-${run}`, 'Device');

  // 2. Company A likewise, with employee B and tool C.
  const companyA = await identity(null, `company-a-${run}`, 'Organization');
  const vcA = await adminIdentity.createCredential(undefined, companyA.doc.id, 'VerifiedIdentityCredential', 'Organization', { name: 'Company A' });
  ok((await adminIdentity.checkCredential(vcA)).isVerified === true, 'company A credential checks');
  const employeeB = await identity(companyA, `employee-b-${run}`, 'Person');
  const toolC = await identity(companyA, `tool-c-${run}`, 'Service');

  const xClient = new IdentityClient(config);
  await xClient.authenticate(companyX.doc.id, companyX.key.secret);
  const foundZ = await xClient.find(sensorZ.doc.id);
  ok(foundZ && foundZ.id === sensorZ.doc.id && foundZ.creator === companyX.doc.id, 'find sensor Z, created by company X', foundZ);
  const searchX = await xClient.search({ username: `company-x-${run}` });
  ok(Array.isArray(searchX) && searchX.length === 1 && searchX[0].isVerified === true, 'search identities shows company X verified', searchX);

  // 3. Sensor Z creates channel A.
  const z = new ChannelClient(config);
  await z.authenticate(sensorZ.doc.id, sensorZ.key.secret);
  const channelName = `channel-a-${run}`;
  const created = await z.create({
    name: channelName,
    description: 'threat information from sensor Z',
    type: 'private',
    topics: [{ type: 'threat-intel', source: `sensor-z-${run}` }],
    seed: 'ignored-seed-of-at-least-32-characters-xxxx',
  });
  const addr = created.channelAddress;
  ok(typeof addr === 'string' && addr.length === 105, 'sensor Z creates channel A (105-char address)', created);
  await expectStatus(() => z.create({ name: channelName, topics: [{ type: 'x', source: 'y' }] }), 409, 'duplicate channel name is 409');

  // 4. Tool C searches by metadata and requests a subscription.
  const c = new ChannelClient(config);
  await c.authenticate(toolC.doc.id, toolC.key.secret);
  const found = await c.search({ topicType: 'threat-intel', topicSource: `sensor-z-${run}` });
  ok(found.length === 1 && found[0].channelAddress === addr && found[0].authorId === sensorZ.doc.id, 'tool C finds channel A by topic', found);
  const regex = await c.search({ name: '.*(a+)+$[' });
  ok(Array.isArray(regex) && regex.length === 0, 'regex metacharacters match literally (no channels)', regex);
  const info = await c.info(addr);
  ok(info.channelAddress === addr && info.topics[0].type === 'threat-intel', 'tool C reads channel info', info);
  const req = await c.requestSubscription(addr, { accessRights: 'Read' });
  ok(req && typeof req.subscriptionLink === 'string', 'tool C requests a Read subscription', req);
  await expectStatus(() => c.read(addr), 403, 'tool C cannot read before authorization');
  await expectStatus(() => c.authorizeSubscription(addr, { id: toolC.doc.id }), 403, 'tool C cannot authorize itself');
  await expectStatus(() => c.updateSubscription(addr, toolC.doc.id, { isAuthorized: true, accessRights: 'ReadAndWrite' }), 403, 'tool C cannot raise its own rights');
  await expectStatus(() => c.findAllSubscriptions(addr), 403, 'tool C cannot list the channel\'s subscriptions');

  // 5. Sensor Z authorizes tool C as a reader.
  const pending = await z.findAllSubscriptions(addr, false);
  const pc = pending.find((s) => s.id === toolC.doc.id);
  ok(pc && pc.isAuthorized === false && pc.accessRights === 'Read', 'sensor Z sees the pending request', pending);
  const auth = await z.authorizeSubscription(addr, { subscriptionLink: req.subscriptionLink });
  ok(auth && typeof auth.keyloadLink === 'string', 'sensor Z authorizes tool C', auth);
  const sub = await c.findSubscription(addr, toolC.doc.id);
  ok(sub.isAuthorized === true && sub.accessRights === 'Read', 'tool C is an authorized reader', sub);

  // 6 + 7. Sensor Z writes; tool C is notified over the event stream.
  const event = sseOneEntry(`${process.env.GATEWAY_URL}/api/v0.1/channels/events/${addr}?api-key=${encodeURIComponent(process.env.API_KEY || '')}`, c.jwtToken);
  await new Promise((r) => setTimeout(r, 200));
  const log = {
    type: 'threat-detected',
    created: new Date().toISOString(),
    metadata: { severity: 'high' },
    publicPayload: { summary: 'port scan' },
    payload: { from: '10.0.0.7', ports: [22, 80, 443] },
  };
  const written = await z.write(addr, log);
  ok(written.link && written.messageId && written.log.created === log.created && written.log.type === log.type &&
    JSON.stringify(written.log.payload) === JSON.stringify(log.payload), 'sensor Z writes to channel A', written);
  const notified = await event;
  ok(notified.link === written.link && notified.index === 0, 'tool C is notified of the new entry', notified);

  const read = await c.read(addr);
  ok(read.length === 1 && read[0].link === written.link && read[0].source.id === sensorZ.doc.id &&
    JSON.stringify(read[0].log.metadata) === JSON.stringify(log.metadata), 'tool C reads the entry', read);
  const valid = await c.validate(addr, read);
  ok(valid.length === 1 && valid[0].isValid === true, 'tool C validates the entry', valid);
  const tampered = JSON.parse(JSON.stringify(read));
  tampered[0].log.payload.ports = [22];
  const invalid = await c.validate(addr, tampered);
  ok(invalid[0].isValid === false, 'altered data does not validate', invalid);
  await expectStatus(() => c.write(addr, { type: 'not-allowed' }), 403, 'a Read subscriber cannot write');

  // Failures: wrong key, unauthorized reader, unknown channel.
  const wrong = new ChannelClient(config);
  await expectStatus(() => wrong.authenticate(toolC.doc.id, employeeB.key.secret), 401, 'wrong key cannot authenticate');
  ok(wrong.jwtToken === undefined, 'no JWT after a failed login');
  const b = new ChannelClient(config);
  await b.authenticate(employeeB.doc.id, employeeB.key.secret);
  await expectStatus(() => b.read(addr), 403, 'unauthorized reader cannot read');
  const unknown = 'ab'.repeat(40) + ':' + 'cd'.repeat(12);
  await expectStatus(() => b.read(unknown), 404, 'unknown channel is 404');

  // Revoke: tool C can no longer read.
  await z.revokeSubscription(addr, { id: toolC.doc.id });
  await expectStatus(() => c.read(addr), 403, 'revoked reader cannot read');
  const after = await z.findAllSubscriptions(addr);
  ok(after.length === 1 && after[0].id === sensorZ.doc.id, 'only the author remains subscribed', after);
  ok(employeeY.doc.id !== sensorZ.doc.id, 'distinct identities');
}

main().then(
  () => { console.log(`${passed} passed, ${failed} failed`); process.exit(0); },
  (e) => {
    if (failed === 0) {
      failed++;
      console.log(`not ok - unexpected error: ${e && e.stack}`);
      if (e && e.response) console.log(JSON.stringify({ status: e.response.status, data: e.response.data, url: e.config && e.config.url }));
    }
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(1);
  },
);
