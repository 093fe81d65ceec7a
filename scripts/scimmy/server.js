// A SCIM 2.0 server we did not write, for the integration tests: the SCIMMY
// library (scimmy + scimmy-routers, from npm) behind express, with in-memory
// storage. SCIMMY parses and validates requests, applies PATCH operations and
// filters, and formats responses; this file only stores what SCIMMY hands it.
// Tests read the server's state over SCIM: there is no admin endpoint.
//
// Configured by the environment:
//   PORT              TCP port on 127.0.0.1 (0 or unset: any free port)
//   SCIM_TOKEN        the bearer token clients must send (required)
//   CUSTOM_SCHEMA     URN of a custom User extension; "none": no custom
//                     extension (unset or empty: urn:ietf:params:scim:schemas:extension:usersync:2.0:User)
//   CUSTOM_ATTRIBUTES comma-separated string attributes of that extension
//                     (unset or empty: settingsTemplate,accessTier,office,costCode)
//   MAX_RESULTS       ServiceProviderConfig filter.maxResults; list responses
//                     never hold more, whatever `count` asks, and hold that
//                     many when `count` is absent (unset or empty: 200)
//
// The SCIM base URL is http://127.0.0.1:PORT/scim/v2. One line per request
// goes to stdout: method, path with query, status, duration.
//
// What this file adds to SCIMMY, which leaves storage to its host: ids and
// meta dates; 409 uniqueness on userName and group displayName (both
// case-insensitive); a user's read-only `groups` from the groups' members;
// deleting a user removes it from groups; filters on extension attributes
// (URN:attribute); an empty page, not the first one, past the last result.
// SCIMMY's own quirks are kept on purpose (it is the peer we test against):
// e.g. its filter `eq` is case-sensitive, even on userName, and attribute
// names and URNs in PATCH paths must match the schema's case.
import {randomUUID, timingSafeEqual, createHash} from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const BASE_PATH = "/scim/v2";
const DEFAULT_CUSTOM_SCHEMA = "urn:ietf:params:scim:schemas:extension:usersync:2.0:User";
const DEFAULT_CUSTOM_ATTRIBUTES = "settingsTemplate,accessTier,office,costCode";

function fail(message) {
    console.error(`scimmy: ${message}`);
    process.exit(2);
}

function intFromEnv(name, fallback, min) {
    const raw = (process.env[name] ?? "").trim();
    if (raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) fail(`${name}=${raw}: want an integer >= ${min}`);
    return n;
}

const port = intFromEnv("PORT", 0, 0);
const maxResults = intFromEnv("MAX_RESULTS", 200, 1);
const token = process.env.SCIM_TOKEN ?? "";
if (token === "") fail("SCIM_TOKEN is not set");
const customSchema = (process.env.CUSTOM_SCHEMA ?? "").trim() || DEFAULT_CUSTOM_SCHEMA;
const customAttributes = ((process.env.CUSTOM_ATTRIBUTES ?? "").trim() || DEFAULT_CUSTOM_ATTRIBUTES)
    .split(",").map(a => a.trim()).filter(a => a !== "");

// --- Schemas and resource types ---------------------------------------------

const extensions = [{schema: SCIMMY.Schemas.EnterpriseUser, required: false}];
if (customSchema.toLowerCase() !== "none") {
    let definition;
    try {
        definition = new SCIMMY.Types.SchemaDefinition("UsersyncUser", customSchema,
            "Custom User extension of the usersync test peer",
            customAttributes.map(name => new SCIMMY.Types.Attribute("string", name)));
    } catch (ex) {
        fail(`CUSTOM_SCHEMA/CUSTOM_ATTRIBUTES: ${ex.message}`);
    }
    extensions.push({schema: definition, required: false});
}

// In-memory storage: id -> stored resource (plain JSON, as SCIMMY validated it).
// Maps keep insertion order, so list pages are stable.
const users = new Map();
const groups = new Map();

const clone = (v) => structuredClone(v);
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);

// plain turns a SCIMMY schema instance into stored data: its JSON form
// without the attributes the server owns.
function plain(instance) {
    const data = JSON.parse(JSON.stringify(instance));
    delete data.id;
    delete data.meta;
    return data;
}

function sameData(a, b) {
    const strip = ({id, meta, groups, ...rest}) => rest;
    return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

// save stores data under the id of resource (update) or a new id (create).
// taken(data, id) names the attribute another resource already holds, if any.
function save(store, resource, data, taken) {
    const now = new Date().toISOString();
    const existing = resource.id ? store.get(resource.id) : undefined;
    if (resource.id && !existing) throw notFound(resource.id);
    const clash = taken(data, resource.id);
    if (clash) throw new SCIMMY.Types.Error(409, "uniqueness", clash);
    if (existing && sameData(existing, data)) return existing; // e.g. a PATCH that changed nothing
    const id = existing ? existing.id : randomUUID();
    const record = {
        ...data, id,
        meta: {created: existing ? existing.meta.created : now, lastModified: now},
    };
    store.set(id, record);
    return record;
}

// matchable adds flat "URN:attribute" keys for extension attributes, so that
// SCIMMY's Filter.match, which compares top-level keys, can match filters on
// them (urn:...:User:office eq "Oslo").
function matchable(record) {
    const flat = {...record};
    for (const [key, value] of Object.entries(record)) {
        if (key.startsWith("urn:") && value && typeof value === "object" && !Array.isArray(value)) {
            for (const [name, v] of Object.entries(value)) flat[`${key}:${name}`] = v;
        }
    }
    return flat;
}

// list returns the resources of store matching the request's filter, and
// caps the page size at MAX_RESULTS; SCIMMY's ListResponse pages them.
function list(store, resource, decorate) {
    const all = [...store.values()].map(r => decorate(clone(r)));
    let matched = all;
    if (resource.filter) {
        const hits = new Set(resource.filter.match(all.map(matchable)).map(m => m.id));
        matched = all.filter(r => hits.has(r.id));
    }
    // sort is not supported (ServiceProviderConfig says so): drop sortBy.
    const {sortBy, sortOrder, ...constraints} = resource.constraints ?? {};
    constraints.count = Math.min(constraints.count ?? maxResults, maxResults);
    resource.constraints = constraints;
    // ListResponse returns the first page when startIndex is past the end;
    // answer an empty page instead, with the true totalResults.
    if ((constraints.startIndex ?? 1) > matched.length) {
        constraints.totalResults = matched.length;
        return [];
    }
    return matched;
}

const lower = (s) => (typeof s === "string" ? s.toLowerCase() : s);

// A user's groups (read-only in SCIM) come from the groups' members.
function withGroups(user) {
    const member = [...groups.values()]
        .filter(g => (g.members ?? []).some(m => m.value === user.id))
        .map(g => ({value: g.id, display: g.displayName, type: "direct"}));
    if (member.length) user.groups = member;
    return user;
}

SCIMMY.Resources.declare(SCIMMY.Resources.User, {
    extensions,
    ingress: (resource, instance) => clone(withGroups(save(users, resource, plain(instance), (data, self) => {
        const other = [...users.values()].find(u => u.id !== self && lower(u.userName) === lower(data.userName));
        return other && `userName '${data.userName}' is already taken`;
    }))),
    egress: (resource) => {
        if (resource.id) {
            const user = users.get(resource.id);
            if (!user) throw notFound(resource.id);
            return withGroups(clone(user));
        }
        return list(users, resource, withGroups);
    },
    degress: (resource) => {
        if (!users.delete(resource.id)) throw notFound(resource.id);
        // Deleting a user ends its memberships, as real servers do.
        const now = new Date().toISOString();
        for (const g of groups.values()) {
            const kept = (g.members ?? []).filter(m => m.value !== resource.id);
            if (kept.length !== (g.members ?? []).length) {
                if (kept.length) g.members = kept;
                else delete g.members;
                g.meta.lastModified = now;
            }
        }
    },
});

SCIMMY.Resources.declare(SCIMMY.Resources.Group, {
    ingress: (resource, instance) => clone(save(groups, resource, plain(instance), (data, self) => {
        const other = [...groups.values()].find(g => g.id !== self && lower(g.displayName) === lower(data.displayName));
        return other && `displayName '${data.displayName}' is already taken`;
    })),
    egress: (resource) => {
        if (resource.id) {
            const group = groups.get(resource.id);
            if (!group) throw notFound(resource.id);
            return clone(group);
        }
        return list(groups, resource, g => g);
    },
    degress: (resource) => {
        if (!groups.delete(resource.id)) throw notFound(resource.id);
    },
});

// --- HTTP ------------------------------------------------------------------

const tokenDigest = createHash("sha256").update(token).digest();

function authenticate(req) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.header("Authorization") ?? "");
    const given = m ? createHash("sha256").update(m[1]).digest() : null;
    if (!given || !timingSafeEqual(given, tokenDigest))
        throw new Error("Missing or invalid bearer token");
    return "usersync"; // the authenticated client; /Me finds no such user
}

const app = express();
app.disable("x-powered-by");

app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    res.on("finish", () => {
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        console.log(`${req.method} ${req.originalUrl} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    next();
});

app.use(BASE_PATH, new SCIMMYRouters({
    type: "bearer",
    handler: authenticate,
    // Absolute meta.location values, as most servers send.
    baseUri: (req) => `${req.protocol}://${req.get("host")}`,
}));

// SCIMMYRouters turns on sort and bulk; this server supports neither.
SCIMMY.Config.set({
    patch: true,
    filter: maxResults,
    bulk: false,
    sort: false,
    changePassword: false,
    etag: false,
});

app.use((req, res) => {
    res.status(404).type("application/scim+json").send(JSON.stringify(
        new SCIMMY.Messages.Error({status: 404, message: `No SCIM endpoint at ${req.path}; the base is ${BASE_PATH}`})));
});

// The router hands 5xx errors on after answering: log them, answer if it did not.
app.use((err, req, res, next) => {
    const detail = err instanceof SCIMMY.Types.Error ? err.message : (err?.stack ?? err);
    console.error(`scimmy: ${req.method} ${req.originalUrl}: ${detail}`);
    if (!res.headersSent) {
        res.status(err?.status ?? 500).type("application/scim+json").send(JSON.stringify(
            new SCIMMY.Messages.Error({status: err?.status ?? 500, message: String(err?.message ?? err)})));
    }
});

const server = app.listen(port, "127.0.0.1", () => {
    const {port} = server.address();
    console.log(`scimmy: listening on http://127.0.0.1:${port}${BASE_PATH} ` +
        `(custom extension ${extensions.length > 1 ? customSchema + " [" + customAttributes.join(",") + "]" : "none"}, maxResults ${maxResults})`);
});
server.on("error", (err) => fail(`listen on 127.0.0.1:${port}: ${err.message}`));

function shutdown(signal) {
    console.log(`scimmy: ${signal}, shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
