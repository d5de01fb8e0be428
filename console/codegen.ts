import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every operation in src/, from the server's schema (exported by
// `python -m adaptive_engine.server.graphql.export_schema console/schema.graphql`).
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      // Fragments (shared field lists such as a connection's page info) spread into their operations' types.
      presetConfig: { fragmentMasking: false },
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: {
          UUID: "string",
          IdOrKey: "string",
          Timestamp: "number",
          InputDatetime: "string",
          JSON: "unknown",
          Upload: "File",
        },
      },
    },
  },
};

export default config;
