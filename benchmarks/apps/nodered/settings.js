// Node-RED settings of the HTTP benchmark: loopback only, no editor, quiet logs.
// The port comes from the command line (-p), the flows from the flows file argument.
module.exports = {
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    httpNodeRoot: "/",
    credentialSecret: false,
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false },
    logging: { console: { level: "warn", metrics: false, audit: false } },
    functionExternalModules: false,
};
