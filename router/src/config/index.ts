// Public surface of the configuration contract (the operator imports only this file).
export * from './schema.js';
export * from './validate.js';
