// What a browser client on another origin does: REST with fetch (custom headers, so the browser
// sends a preflight first) and gRPC-Web with a small hand-written framing. The test calls these
// functions with page.evaluate and checks what they return; each also shows it in <pre id=result>.
"use strict";

function show(what, value) {
  const pre = document.getElementById("result");
  pre.textContent += what + ": " + JSON.stringify(value, null, 1) + "\n";
  return value;
}

// One fetch, as data: the status, the headers the page may read and the body; or the error when
// the browser refused the call (a TypeError, which is all CORS lets a page know).
async function call(url, init) {
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch (_) {}
    return {
      status: response.status,
      requestId: response.headers.get("x-request-id"),
      wwwAuthenticate: response.headers.get("www-authenticate"),
      body,
    };
  } catch (error) {
    return { error: error.name, message: error.message };
  }
}

const candidate = (api, name) => api + "/candidate/" + encodeURIComponent(name);

// A GET, a POST and a DELETE with custom headers (x-request-id; Authorization for the writes), a
// write without a key, and a header the server does not allow.
window.restCalls = async function (api, key, name, scratch) {
  const auth = { authorization: "Bearer " + key };
  const results = {
    post: await call(candidate(api, name), { method: "POST", headers: { ...auth, "x-request-id": "browser-post" } }),
    get: await call(candidate(api, name), { headers: { "x-request-id": "browser-get" } }),
    postScratch: await call(candidate(api, scratch), { method: "POST", headers: auth }),
    deleteScratch: await call(candidate(api, scratch), {
      method: "DELETE",
      headers: { ...auth, "x-request-id": "browser-delete" },
    }),
    getDeleted: await call(candidate(api, scratch), { headers: { "x-request-id": "browser-get-deleted" } }),
    deleteWithoutKey: await call(candidate(api, name), { method: "DELETE", headers: { "x-request-id": "no-key" } }),
    notAllowedHeader: await call(candidate(api, name), { headers: { "x-not-allowed": "1" } }),
  };
  return show("rest", results);
};

// --- gRPC-Web, by hand: a frame is a flag byte (0x00 data, 0x80 trailers), a 4-byte big-endian
// length and the bytes; the messages here are { string name = 1; } (proto/candidates/v1).

function encodeName(name) {
  const bytes = new TextEncoder().encode(name);
  const varint = [];
  let n = bytes.length;
  while (n > 0x7f) {
    varint.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  varint.push(n);
  return Uint8Array.from([0x0a, ...varint, ...bytes]); // field 1, wire type 2 (length-delimited)
}

function decodeName(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const tag = bytes[i++];
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[i++];
      length |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (tag === 0x0a) return new TextDecoder().decode(bytes.subarray(i, i + length));
    i += length; // another length-delimited field: skip it
  }
  return "";
}

function frame(message) {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

// A grpc-web-text body may be several base64 runs, each padded: decode four characters at a time.
function fromBase64(text) {
  const clean = text.replace(/\s/g, "");
  const out = [];
  for (let i = 0; i < clean.length; i += 4) {
    for (const c of atob(clean.slice(i, i + 4))) out.push(c.charCodeAt(0));
  }
  return Uint8Array.from(out);
}

function parseFrames(bytes) {
  const messages = [];
  const trailers = {};
  let i = 0;
  while (i + 5 <= bytes.length) {
    const flag = bytes[i];
    const length = new DataView(bytes.buffer, bytes.byteOffset + i + 1, 4).getUint32(0);
    const payload = bytes.subarray(i + 5, i + 5 + length);
    if (flag & 0x80) {
      for (const line of new TextDecoder().decode(payload).split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    } else {
      messages.push(decodeName(payload));
    }
    i += 5 + length;
  }
  return { messages, trailers, leftover: bytes.length - i };
}

// One unary call. mode: "binary" (application/grpc-web+proto) or "text" (application/grpc-web-text).
window.grpcWebCall = async function (api, method, name, mode, key) {
  const text = mode === "text";
  const contentType = text ? "application/grpc-web-text" : "application/grpc-web+proto";
  const headers = { "content-type": contentType, accept: contentType, "x-grpc-web": "1", "grpc-timeout": "5S" };
  if (key) headers.authorization = "Bearer " + key;
  const body = frame(encodeName(name));
  try {
    const response = await fetch(api + "/candidates.v1.CandidateService/" + method, {
      method: "POST",
      headers,
      body: text ? toBase64(body) : body,
    });
    const raw = text ? fromBase64(await response.text()) : new Uint8Array(await response.arrayBuffer());
    const parsed = parseFrames(raw);
    // A trailers-only answer (an error) has its status in the headers.
    const status = response.headers.get("grpc-status") ?? parsed.trailers["grpc-status"] ?? null;
    const message = response.headers.get("grpc-message") ?? parsed.trailers["grpc-message"] ?? null;
    return show("grpc-web " + mode + " " + method, {
      http: response.status,
      contentType: response.headers.get("content-type"),
      grpcStatus: status,
      grpcMessage: message && decodeURIComponent(message),
      messages: parsed.messages,
      leftover: parsed.leftover,
    });
  } catch (error) {
    return show("grpc-web " + mode + " " + method, { error: error.name, message: error.message });
  }
};
