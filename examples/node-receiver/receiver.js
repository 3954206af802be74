// A webhook receiver as the template's Express handlers are written: the
// body is parsed (express.json() does this before the handler runs), and
// the signature is checked over JSON.stringify(req.body), the body written
// again by JavaScript. Odometer writes every body exactly as
// JSON.stringify writes it, so this verifies, whatever the customer id,
// event type or value.
//
// Plain Node (18 or newer), no packages:
//
//	WEBHOOK_SECRET=whsec_... PORT=9000 node examples/node-receiver/receiver.js
//
// It answers 200 to a webhook whose X-Webhook-Signature verifies and 401
// otherwise, and prints one JSON line per webhook. With PORT=0 it takes a
// free port and prints {"listening": PORT} first.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("WEBHOOK_SECRET is not set");
  process.exit(2);
}

// sign is the template's signature: v1= and the lowercase hex HMAC-SHA256,
// keyed with the secret string, of timestamp + "." + body.
function sign(timestamp, body) {
  return "v1=" + crypto.createHmac("sha256", secret).update(timestamp + "." + body).digest("hex");
}

function verify(req) {
  const timestamp = req.headers["x-webhook-timestamp"] || "";
  const given = Buffer.from(req.headers["x-webhook-signature"] || "");
  // What Express apps do: the parsed body, written again.
  const expected = Buffer.from(sign(timestamp, JSON.stringify(req.body)));
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return "signature does not match the re-serialized body";
  }
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) {
    return "timestamp outside the 5-minute window";
  }
  return "";
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    try {
      req.body = JSON.parse(raw); // express.json()
    } catch (e) {
      res.writeHead(400).end();
      return;
    }
    const problem = verify(req);
    console.log(JSON.stringify({
      verified: problem === "",
      problem,
      // Whether the body as sent is already what JSON.stringify writes.
      identical: JSON.stringify(req.body) === raw,
      webhookId: req.headers["webhook-id"],
      type: req.body.type,
      customerId: req.body.customerId,
      period: req.body.period,
    }));
    res.writeHead(problem === "" ? 200 : 401, { "Content-Type": "application/json" });
    res.end(JSON.stringify(problem === "" ? { received: true } : { error: problem }));
  });
});

server.listen(Number(process.env.PORT || 9000), process.env.HOST || "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
