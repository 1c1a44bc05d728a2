/** Test support now lives in @tufa/testing; this name stays for the mutation tests that import it from here. */
export { refusal } from '@tufa/testing';
