// The baseline: the receiver a team following the seeds would write (seed 000's Express
// receiver, producing to Kafka instead of calling the ERP). Verify the HMAC on the raw body
// with timingSafeEqual, produce with kafkajs and acks=all, answer 200 after the ack.
//
//   KAFKA=127.0.0.1:9092 TOPIC=orders.raw.baseline SECRET=… PORT=3000 node server.js
'use strict';
const crypto = require('node:crypto');
const express = require('express');
const { Kafka, logLevel } = require('kafkajs');

const { KAFKA, TOPIC, SECRET, PORT } = process.env;
const kafka = new Kafka({ clientId: 'express-baseline', brokers: [KAFKA], logLevel: logLevel.ERROR });
const producer = kafka.producer({ allowAutoTopicCreation: false });

function verify(rawBody, signature) {
  const expected = crypto.createHmac('sha256', SECRET).update(rawBody).digest('base64');
  try {
    return crypto.timingSafeEqual(Buffer.from(signature || ''), Buffer.from(expected));
  } catch {
    return false;
  }
}

const app = express();
app.post('/webhooks/shopify', express.raw({ type: '*/*', limit: '1mb' }), async (req, res) => {
  if (!verify(req.body, req.get('x-shopify-hmac-sha256'))) {
    return res.status(401).send('Invalid signature');
  }
  let id;
  try {
    id = JSON.parse(req.body.toString()).id;
  } catch {
    id = req.get('x-shopify-webhook-id');
  }
  try {
    await producer.send({
      topic: TOPIC,
      acks: -1, // all in-sync replicas, like OrderBridge
      messages: [{ key: `shopify:${req.get('x-shopify-shop-domain')}:${id}`, value: req.body }],
    });
    return res.status(200).end();
  } catch (err) {
    console.error('produce failed:', err.message);
    return res.status(500).end();
  }
});

producer.connect().then(() => {
  app.listen(Number(PORT), '127.0.0.1', () => console.log(`baseline listening on ${PORT}`));
});
