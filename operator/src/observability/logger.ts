// The operator logs exactly like the router it feeds: winston JSON, one object per line, message under "msg".
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../../router/src/logger.js';

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
