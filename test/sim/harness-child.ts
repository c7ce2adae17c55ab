// Test fixture: starts one engine through the harness, prints its pid, then idles until killed.
// Used to prove that an engine does not outlive a harness process that dies abruptly.
import { startEngine } from './harness.js';

const engine = await startEngine({});
process.stdout.write(JSON.stringify({ enginePid: engine.pid, url: engine.url }) + '\n');
setInterval(() => undefined, 1 << 30);
