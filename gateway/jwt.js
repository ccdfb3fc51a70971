// JWT pre-check at the edge (njs). The apps verify every token again themselves; this
// only keeps forged, expired and foreign tokens from reaching them.
//
// Keys come from identity's JWKS, fetched through the gateway's own Dapr sidecar. njs keeps
// nothing between requests, so NGINX caches the JWKS (a loopback server with proxy_cache,
// refreshed each minute); identity pre-publishes the next key, so rotations are seen in time.

const LEEWAY_S = 30;
// DER prefix of a P-256 SubjectPublicKeyInfo; the uncompressed point (04 || x || y) follows.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

function b64url(text) {
    return Buffer.from(text, 'base64url');
}

async function importKey(jwk) {
    const point = Buffer.concat([Buffer.from([4]), b64url(jwk.x), b64url(jwk.y)]);
    const spki = Buffer.concat([P256_SPKI_PREFIX, point]);
    return crypto.subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' },
                                   false, ['verify']);
}

// The key for `kid`, null when the JWKS has no such key, or undefined when the JWKS could
// not be had at all (identity down before NGINX cached it): that is no verdict on the token.
async function keyFor(r, kid) {
    let list;
    try {
        const reply = await ngx.fetch(r.variables.jwks_url);
        if (reply.status !== 200) {
            throw new Error('jwks status ' + reply.status);
        }
        list = (await reply.json()).keys || [];
    } catch (e) {
        r.error('jwks fetch failed: ' + e);
        return undefined;
    }
    for (let i = 0; i < list.length; i++) {
        const jwk = list[i];
        if (jwk.kid === kid && jwk.kty === 'EC' && jwk.crv === 'P-256') {
            return await importKey(jwk);
        }
    }
    return null;
}

function deny(r, reason) {
    r.variables.jwt_reject_reason = reason;
    r.return(401);
}

async function verify(r) {
    const header = r.headersIn.Authorization || '';
    const match = header.match(/^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/);
    if (!match) {
        return deny(r, 'missing or malformed bearer token');
    }
    let head, claims;
    try {
        head = JSON.parse(b64url(match[1]).toString());
        claims = JSON.parse(b64url(match[2]).toString());
    } catch (e) {
        return deny(r, 'undecodable token');
    }
    if (head.alg !== 'ES256' || typeof head.kid !== 'string') {
        return deny(r, 'algorithm not accepted');
    }
    const key = await keyFor(r, head.kid);
    if (key === undefined) {
        // auth_request turns any status but 2xx/401/403 into a 500, which error_page makes
        // a 503 problem: a valid token must not be told it is invalid.
        r.variables.jwt_reject_reason = 'keys unavailable';
        return r.return(500);
    }
    if (!key) {
        return deny(r, 'unknown key');
    }
    const signed = Buffer.from(match[1] + '.' + match[2]);
    const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key,
                                          b64url(match[3]), signed);
    if (!ok) {
        return deny(r, 'bad signature');
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp + LEEWAY_S < now) {
        return deny(r, 'expired');
    }
    if (typeof claims.nbf === 'number' && claims.nbf - LEEWAY_S > now) {
        return deny(r, 'not yet valid');
    }
    if (claims.iss !== r.variables.jwt_issuer) {
        return deny(r, 'wrong issuer');
    }
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (aud.indexOf(r.variables.jwt_audience) < 0) {
        return deny(r, 'wrong audience');
    }
    r.return(204);
}

export default { verify };
