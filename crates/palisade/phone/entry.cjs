// The softphone's SIP library: JsSIP as the global `JsSIP` (build.mjs bundles it).
module.exports = require("jssip");
