// winston JSON logs, one object per line, the message under "msg".
import winston from 'winston';

export type Logger = winston.Logger;
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const toLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info;
  return JSON.stringify({ ts: timestamp, level, msg: message, ...rest });
});

export function createLogger(level: LogLevel = 'info'): Logger {
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format: winston.format.combine(winston.format.timestamp(), toLine),
    transports: [new winston.transports.Console()],
  });
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
