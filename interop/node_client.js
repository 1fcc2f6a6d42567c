// A client built on Node's `ws` that checks an echo server.
// Usage: node node_client.js URL [deflate]. With "deflate" it offers
// permessage-deflate (compressing every message) and checks it was accepted.
// Sends text and binary messages of several
// sizes, a fragmented message, a ping, then closes with 4002 "node done".
// Prints "ok" and exits 0 when every echo matched.
'use strict';
const WebSocket = require('ws');
const assert = require('assert');

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const deflate = process.argv[3] === 'deflate';
const ws = new WebSocket(process.argv[2], {
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxPayload: 0,
});
const queue = [];
let waiting = null;
ws.on('message', (data, isBinary) => {
  const item = { data, isBinary };
  if (waiting) { const w = waiting; waiting = null; w(item); } else { queue.push(item); }
});
const next = () => new Promise((resolve) => {
  if (queue.length) resolve(queue.shift()); else waiting = resolve;
});
const fail = (e) => { console.error(e); process.exit(1); };
setTimeout(() => fail(new Error('timeout')), 30000).unref();

ws.on('error', fail);
ws.on('open', async () => {
  try {
    assert.strictEqual(ws.extensions.startsWith('permessage-deflate'), deflate, ws.extensions);
    for (const size of SIZES) {
      const bin = Buffer.alloc(size, 0).map((_, i) => i % 251);
      ws.send(bin, { binary: true });
      let got = await next();
      assert.ok(got.isBinary && Buffer.compare(got.data, bin) === 0, `binary ${size}`);
      const text = 'wsproto ✓ '.repeat(Math.floor(size / 10) + 1).slice(0, size);
      ws.send(text);
      got = await next();
      assert.ok(!got.isBinary && got.data.toString() === text, `text ${size}`);
    }
    // A fragmented message: fin=false on all but the last frame.
    ws.send('frag', { fin: false });
    ws.send('ment', { fin: false });
    ws.send('ed ✓', { fin: true });
    const got = await next();
    assert.strictEqual(got.data.toString(), 'fragmented ✓');
    await new Promise((resolve) => { ws.once('pong', (p) => { assert.strictEqual(p.toString(), 'node ping'); resolve(); }); ws.ping('node ping'); });
    ws.on('close', (code, reason) => {
      assert.strictEqual(code, 4002);
      console.log('ok');
      process.exit(0);
    });
    ws.close(4002, 'node done');
  } catch (e) { fail(e); }
});
