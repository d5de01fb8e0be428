import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the console on :5173 and sends API calls to a server on :8000.
const api = process.env.ADAPTIVE_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  server: { proxy: { "/api": api } },
});
