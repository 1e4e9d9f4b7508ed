// What every editor and list of the console keeps: an editor's errors from the server's problem
// document (by field, and the rest) and whether its request is out; a screen's loading and error
// states. One request at a time each, its failure put where the screen shows it.
import { fieldErrors } from './forms';
import { errText } from './state.svelte';

export class FormState {
	errors = $state<Record<string, string>>({});
	general = $state('');
	saving = $state(false);

	clear() {
		this.errors = {};
		this.general = '';
	}

	/** Runs the request; true when it succeeded, else its problems are on the fields. */
	async submit(run: () => Promise<void>): Promise<boolean> {
		this.saving = true;
		this.clear();
		try {
			await run();
			return true;
		} catch (x) {
			const f = fieldErrors(x);
			this.errors = f.fields;
			this.general = f.general;
			return false;
		} finally {
			this.saving = false;
		}
	}
}

export class Loading {
	loading = $state(true);
	error = $state('');

	async run(fetch: () => Promise<void>) {
		this.loading = true;
		this.error = '';
		try {
			await fetch();
		} catch (e) {
			this.error = errText(e);
		} finally {
			this.loading = false;
		}
	}
}
