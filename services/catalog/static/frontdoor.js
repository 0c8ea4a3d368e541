// The front door's only script; every page works without it.
// A form marked data-autosubmit (signing out at the identity provider) is sent at once.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
});
