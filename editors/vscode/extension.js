// The policy extension: the TextMate grammar and language configuration are declared in
// package.json; this file starts the language server, `policy lsp`, over stdio.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate() {
  const settings = vscode.workspace.getConfiguration("policy");
  const [command, ...args] = settings.get("server.command", ["policy", "lsp"]);
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    initializationOptions: {
      analysisDelay: settings.get("analysisDelay", 0.5),
      analysisBudget: settings.get("analysisBudget", 60),
    },
    documentSelector: [
      { scheme: "file", language: "policy" },
      { scheme: "untitled", language: "policy" },
    ],
    synchronize: {
      // The configuration and the samples the "decide sample" lens reads.
      fileEvents: vscode.workspace.createFileSystemWatcher(
        "**/{*.policy,policy.toml,pyproject.toml,samples.jsonl}"
      ),
    },
  };
  client = new LanguageClient("policy", "policy language server", serverOptions, clientOptions);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
