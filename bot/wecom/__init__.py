"""WeCom (企业微信): encrypted callbacks, chat with the agent, approval cards and notices."""
